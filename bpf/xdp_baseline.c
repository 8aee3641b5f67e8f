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
#include "xdp_fwd.h"
#include "pktgen.h"

PKTCOUNT_MAP_DEF;

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
 * backend lookup, no FIB lookup, no counters (xdp_fwd.h). Anything else passes. */
SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ipv4_packet p;

	if (parse_ipv4(data, data_end, data_end - data, false, &p) != PARSE_OK || !xdp_fwd_match(&p))
		return XDP_PASS;
	return xdp_fwd_send(ctx, &p, path_backend_addr, path_backend_port);
}

char LICENSE[] SEC("license") = "GPL";
