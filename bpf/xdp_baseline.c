// SPDX-License-Identifier: GPL-2.0
/* The machine's packet-rate ceilings for `sluice bench pps`, attached to the forwarding node's
 * uplink (fab0) in a lab with no proxy: the least an XDP program can do with a packet.
 * - xdp_drop_count: count and drop (mode xdp-drop).
 * - xdp_tx_swap: swap the Ethernet addresses and send the frame back out (mode xdp-tx); the
 *   frames go back to the sender, where xdp_count counts what was delivered. The ceiling of
 *   the interface.
 * - xdp_fwd: the least a NodePort forwarder can do (mode xdp-fwd), the ceiling of the path
 *   sluice-xdp's packets take: each IPv4 UDP frame for the NodePort gets lb_xdp's rewrite for a
 *   remote backend with every lookup replaced by a constant, and leaves by XDP_TX towards the
 *   backend's node, whose stack routes it to the pod, where xdp_count counts it. */
#define SLUICE_CTX_XDP
/* nat.h brings conntrack.h's ct4, which nothing here uses (no flow is tracked): the smallest
 * map instead of the datapath's 262,144 entries, allocated at every load of this object. */
#define CT4_MAP_SIZE 64
#include "common.h"
#include "ctx.h"
#include "parse.h"
#include "nat.h"
#include "fib.h"
#include "pktgen.h"

PKTCOUNT_MAP_DEF;

/* Load-time config of xdp_fwd (.rodata), set by the pps scenario from the lab. nat.h's node_ipv4
 * is both the NodePort's address and the SNAT source; the rest in network order. */
const volatile __be16 path_nodeport = 0;
const volatile __be32 path_backend_addr = 0;
const volatile __be16 path_backend_port = 0;
/* The next hop towards the backend (the backend node's fab0, as lb_xdp's FIB lookup answers)
 * and this node's fab0: 6 bytes in memory order in the low bytes, as xdp_gen.c's fwd_dmac. */
const volatile __u64 path_dmac = 0;
const volatile __u64 path_smac = 0;

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *c = bpf_map_lookup_elem(&pkt_count, &key);

	if (c)
		(*c)++;
	return XDP_DROP;
}

SEC("xdp")
int xdp_tx_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

/* lb_xdp's forwarding of an established flow to a remote backend (parse_ipv4, nat4_rewrite,
 * fib4_rewrite_l2, XDP_TX) without what makes it a load balancer: no conntrack, no service or
 * backend lookup, no FIB lookup, no counters. DNAT to the backend, SNAT to this node keeping
 * the client's source port, TTL decremented, incremental checksums. Anything else passes. */
SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct bpf_fib_lookup fib = {};
	struct ipv4_packet p;
	struct nat4_target t;
	__u64 dmac = path_dmac, smac = path_smac;

	if (parse_ipv4(data, data_end, data_end - data, false, &p) != PARSE_OK)
		return XDP_PASS;
	if (p.proto != IPPROTO_UDP || p.daddr != node_ipv4 || p.dport != path_nodeport || p.ttl <= 1)
		return XDP_PASS;
	t.saddr = node_ipv4;
	t.sport = p.sport;
	t.daddr = path_backend_addr;
	t.dport = path_backend_port;
	__builtin_memcpy(fib.dmac, &dmac, ETH_ALEN);
	__builtin_memcpy(fib.smac, &smac, ETH_ALEN);
	if (nat4_rewrite(ctx, &p, &t) || fib4_rewrite_l2(ctx, &p, &fib, true))
		return XDP_DROP;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
