/* Direct server return: the balancing node sends a new external flow to a backend on another
 * node without SNAT, and tells the backend's node the service address in an IPv4 option (as
 * Cilium's DSR "opt" mode); that node remembers it in conntrack and gives the backend's replies
 * the service address as their source, so they go straight to the client.
 *
 *   balancing node (XDP or TC):  client -> frontend   becomes   client -> backend [+ option]
 *   backend's node (TC ingress): option seen -> REPLY entry backend -> client, frontend = option
 *   backend's node (TC egress, or pod veth ingress): backend -> client becomes frontend -> client
 *
 * The option (8 bytes, right after the fixed IPv4 header) is copied on fragmentation and of a
 * type no router acts on; the backend's stack ignores an option it does not know. Every packet
 * of the flow's forward direction carries it, so a backend node that lost its entry (LRU,
 * restart) learns it again from the next packet. lb.mode (config) says when DSR is used:
 * snat: never; dsr: TCP and UDP; hybrid: TCP only (UDP replies may come from another socket,
 * and SNAT keeps them on the balancing node). */
#ifndef SLUICE_DSR_H
#define SLUICE_DSR_H

#include "common.h"
#include "csum.h"
#include "ctx.h"
#include "parse.h"
#include "conntrack.h"
#include "verdicts.h"

enum lb_mode {
	LB_MODE_SNAT = 0,
	LB_MODE_DSR = 1,
	LB_MODE_HYBRID = 2,
};

/* Load-time config: how this node sends external flows to other nodes' backends. A backend's
 * node learns DSR options whatever its own mode. */
const volatile __u8 lb_mode = LB_MODE_SNAT;

/* Copied flag (0x80) | class 0 | number 26: Cilium's DSR option type, which routers pass. */
#define DSR_OPT_TYPE 0x9a
#define DSR_OPT_LEN 8

struct dsr_opt4 {
	__u8 type;
	__u8 len;
	__be16 port;    /* the frontend's port */
	__be32 address; /* the frontend's address */
};

static __always_inline bool dsr4_mode_for(__u8 proto)
{
	return lb_mode == LB_MODE_DSR || (lb_mode == LB_MODE_HYBRID && proto == IPPROTO_TCP);
}

/* Makes DSR_OPT_LEN bytes of room right after the fixed IPv4 header, leaving the Ethernet and
 * fixed IPv4 headers in front of it. Returns 0 or a negative errno. */
#ifdef SLUICE_CTX_XDP
static __always_inline int dsr4_make_room(struct xdp_md *ctx)
{
	struct {
		struct ethhdr eth;
		struct iphdr ip;
	} __attribute__((packed)) hdr;
	void *data, *data_end;

	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + sizeof(hdr) > data_end)
		return -1;
	__builtin_memcpy(&hdr, data, sizeof(hdr));
	if (bpf_xdp_adjust_head(ctx, -DSR_OPT_LEN))
		return -1;
	data = ctx_data(ctx);
	data_end = ctx_data_end(ctx);
	if (data + sizeof(hdr) > data_end)
		return -1;
	__builtin_memcpy(data, &hdr, sizeof(hdr));
	return 0;
}
#else
static __always_inline int dsr4_make_room(struct __sk_buff *skb)
{
	/* BPF_ADJ_ROOM_NET inserts after the fixed IPv4 header; GSO sizes shrink to fit. */
	return bpf_skb_adjust_room(skb, DSR_OPT_LEN, BPF_ADJ_ROOM_NET, 0);
}
#endif

/* Inserts the option naming the frontend into the IPv4 packet p (translated already, or not:
 * only the IP header changes; TCP/UDP checksums do not cover options). Afterwards p's L4
 * offsets are DSR_OPT_LEN too small. Returns 0, or -1 (no room: 40 bytes of options already, or
 * a helper failed; the packet may then be half-written). */
static __always_inline int dsr4_push_opt(struct __ctx_buff *ctx, const struct ipv4_packet *p, __be32 address,
					 __be16 port)
{
	struct dsr_opt4 *opt;
	struct iphdr *ip;
	void *data_end;
	__u16 old_w0, new_w0;
	__u32 acc;

	if (p->l4_off - p->l3_off + DSR_OPT_LEN > 60)
		return -1;
	if (dsr4_make_room(ctx))
		return -1;
	data_end = ctx_data_end(ctx);
	ip = ctx_data(ctx) + ETH_HLEN;
	opt = (void *)(ip + 1);
	if ((void *)(opt + 1) > data_end)
		return -1;
	/* The word of version, header length and TOS; the total length; the option's words. */
	old_w0 = *(__u16 *)ip;
	ip->ihl += DSR_OPT_LEN / 4;
	new_w0 = *(__u16 *)ip;
	acc = csum_acc16(0, old_w0, new_w0);
	acc = csum_acc16(acc, ip->tot_len, bpf_htons(p->tot_len + DSR_OPT_LEN));
	ip->tot_len = bpf_htons(p->tot_len + DSR_OPT_LEN);
	opt->type = DSR_OPT_TYPE;
	opt->len = DSR_OPT_LEN;
	opt->port = port;
	opt->address = address;
	acc += ((__u16 *)opt)[0] + ((__u16 *)opt)[1] + ((__u16 *)opt)[2] + ((__u16 *)opt)[3];
	ip->check = csum_apply(ip->check, acc);
	return 0;
}

/* ---- Stage: DSR learn (the backend's node, TC ingress) -------------------------------- *
 * A TCP/UDP packet carrying the option: the REPLY entry (backend -> client) that gives the
 * backend's replies the frontend as source is created, or refreshed by the packet (TCP state as
 * a forward packet). Returns true when the packet carried the option: it is a DSR flow's packet
 * to its backend, already translated by the balancing node, which the rest of the pipeline
 * could only look up in vain (no FORWARD entry is keyed by a backend; its frontend is not
 * here), so the program passes it as it came. */
static __always_inline bool stage_dsr_learn(struct __ctx_buff *ctx, const struct ipv4_packet *p, __u64 now)
{
	void *data_end = ctx_data_end(ctx);
	struct dsr_opt4 *opt = ctx_data(ctx) + ETH_HLEN + sizeof(struct iphdr);
	struct ct4_entry fresh = {};
	struct ct4_entry *e;
	struct ct4_key key = {};

	if (p->l4_off - p->l3_off < sizeof(struct iphdr) + DSR_OPT_LEN)
		return false;
	if ((void *)(opt + 1) > data_end || opt->type != DSR_OPT_TYPE || opt->len != DSR_OPT_LEN)
		return false;
	key.saddr = p->daddr;
	key.daddr = p->saddr;
	key.sport = p->dport;
	key.dport = p->sport;
	key.proto = p->proto;
	key.dir = CT_DIR_REPLY;
	e = bpf_map_lookup_elem(&ct4, &key);
	if (e && ct4_alive(e, now) && (e->flags & CT_F_DSR) && e->frontend_addr == opt->address &&
	    e->frontend_port == opt->port && !ct4_reopens(e, p->proto, p->tcp_flags)) {
		ct4_update(e, p->proto, CT_DIR_FORWARD, p->tcp_flags, now);
		return true;
	}
	fresh.client_addr = p->saddr;
	fresh.client_port = p->sport;
	fresh.frontend_addr = opt->address;
	fresh.frontend_port = opt->port;
	fresh.backend_addr = p->daddr;
	fresh.backend_port = p->dport;
	fresh.snat_addr = p->saddr;
	fresh.snat_port = p->sport;
	fresh.flags = CT_F_DSR;
	if (p->proto == IPPROTO_TCP)
		fresh.state = (p->tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN ? CT_STATE_SYN_SENT : CT_STATE_ESTABLISHED;
	fresh.created_ns = now;
	fresh.expires_ns = now + ct4_timeout_ns(p->proto, fresh.state);
	if (!bpf_map_update_elem(&ct4, &key, &fresh, BPF_ANY))
		verdict_count(VERDICT_DSR_LEARNED, ctx_len(ctx));
	return true;
}

#endif
