// SPDX-License-Identifier: GPL-2.0
/* Per-protocol packet counters at XDP and TC ingress: the smallest real program that
 * exercises every piece of the foundation (parsing, per-CPU array, LRU flow table,
 * ring buffer events, .rodata config). */
#include "common.h"
#include "parse.h"
#include "stats.h"

/* Load-time config (.rodata): set by the loader before the verifier sees the program. */
const volatile __u16 drop_udp_dport = 0; /* host order; 0 disables dropping */
const volatile __u8 track_flows = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_PROTO_MAX);
	__type(key, __u32);
	__type(value, struct proto_counter);
} proto_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key_v4);
	__type(value, struct flow_counters);
} flow_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} flow_events SEC(".maps");
BTF_EXPORT(struct flow_event, flow_event);

static __always_inline __u32 proto_index(const struct parsed_packet *p)
{
	if (!p->l3_proto)
		return STATS_PROTO_NON_IP;
	switch (p->l4_proto) {
	case IPPROTO_TCP:
		return STATS_PROTO_TCP;
	case IPPROTO_UDP:
		return STATS_PROTO_UDP;
	case IPPROTO_ICMP:
		return STATS_PROTO_ICMP;
	case IPPROTO_ICMPV6:
		return STATS_PROTO_ICMPV6;
	default:
		return STATS_PROTO_OTHER;
	}
}

static __always_inline void count_protocol(const struct parsed_packet *p, __u64 len)
{
	__u32 idx = proto_index(p);
	struct proto_counter *c = bpf_map_lookup_elem(&proto_stats, &idx);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

static __always_inline void track_flow(const struct parsed_packet *p, __u64 len, __u32 ifindex)
{
	struct flow_key_v4 key = {
		.saddr = p->v4.saddr,
		.daddr = p->v4.daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->l4_proto,
	};
	__u64 now = bpf_ktime_get_ns();
	struct flow_counters *s = bpf_map_lookup_elem(&flow_table, &key);

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, len);
		s->last_seen_ns = now;
		return;
	}

	struct flow_counters fresh = { .packets = 1, .bytes = len, .first_seen_ns = now, .last_seen_ns = now };
	bpf_map_update_elem(&flow_table, &key, &fresh, BPF_NOEXIST);

	struct flow_event *ev = bpf_ringbuf_reserve(&flow_events, sizeof(*ev), 0);
	if (ev) {
		ev->key = key;
		ev->timestamp_ns = now;
		ev->ifindex = ifindex;
		ev->pad = 0;
		bpf_ringbuf_submit(ev, 0);
	}
}

/* Returns 1 when the packet must be dropped. */
static __always_inline int account(void *data, void *data_end, __u32 ifindex)
{
	struct parsed_packet p = {};
	__u64 len = data_end - data;

	parse_packet(data, data_end, &p);
	count_protocol(&p, len);
	if (p.l3_proto == ETH_P_IP && track_flows)
		track_flow(&p, len, ifindex);
	return drop_udp_dport && p.l4_proto == IPPROTO_UDP && bpf_ntohs(p.dport) == drop_udp_dport;
}

SEC("xdp")
int stats_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return account(data, data_end, ctx->ingress_ifindex) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int stats_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	return account(data, data_end, skb->ifindex) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
