// SPDX-License-Identifier: GPL-2.0
/* The path ceiling of a load balancer that tracks connections (mode xdp-fwd-ct of `sluice bench
 * pps`, docs/pps.md), the least such a design does on each node the packet crosses:
 * - xdp_fwd_ct, at the node that balances: xdp_fwd (xdp_fwd.h) plus one lookup of the packet's
 *   flow, and for a flow not seen before one entry written, into a map of the datapath's kind
 *   and size (conntrack.h's ct4: LRU, 262,144 entries). A known flow goes to the backend its
 *   entry names. Nothing else: no timestamps on a hit, no refresh, no second entry for replies
 *   (sluice writes a REPLY entry too when it SNATs), no counters.
 * - xdp_reply_check, at the backend's node, whose uplink runs the same datapath as every
 *   node's: one lookup of whether the packet answers a flow this node translated (its REPLY
 *   entry: a pod's connection balanced here without SNAT gets its replies back so), then pass.
 *   Sluice's TC path does that lookup for every packet to a pod, and so does any balancer that
 *   translates pods' traffic per packet.
 * Sluice's lb_xdp and lb_tc do all of this and more, so no program that tracks connections
 * delivers more on this path than these two. */
#define SLUICE_CTX_XDP
#include "xdp_fwd.h"
#include "pktgen.h"

PKTCOUNT_MAP_DEF;

SEC("xdp")
int xdp_fwd_ct(struct xdp_md *ctx)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ipv4_packet p;
	struct ct4_entry fresh = {};
	struct ct4_key key;
	struct ct4_entry *e;

	if (parse_ipv4(data, data_end, data_end - data, false, &p) != PARSE_OK || !xdp_fwd_match(&p))
		return XDP_PASS;
	ct4_packet_key(&p, CT_DIR_FORWARD, &key);
	e = bpf_map_lookup_elem(&ct4, &key);
	if (e)
		return xdp_fwd_send(ctx, &p, e->backend_addr, e->backend_port);

	fresh.created_ns = bpf_ktime_get_ns();
	fresh.expires_ns = fresh.created_ns + ct4_timeout_ns(p.proto, CT_STATE_NONE);
	fresh.client_addr = p.saddr;
	fresh.client_port = p.sport;
	fresh.frontend_addr = p.daddr;
	fresh.frontend_port = p.dport;
	fresh.backend_addr = path_backend_addr;
	fresh.backend_port = path_backend_port;
	fresh.snat_addr = node_ipv4;
	fresh.snat_port = p.sport;
	fresh.flags = CT_F_SNAT;
	if (bpf_map_update_elem(&ct4, &key, &fresh, BPF_ANY))
		return XDP_DROP;
	return xdp_fwd_send(ctx, &p, fresh.backend_addr, fresh.backend_port);
}

SEC("xdp")
int xdp_reply_check(struct xdp_md *ctx)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ipv4_packet p;
	struct ct4_key key;

	if (parse_ipv4(data, data_end, data_end - data, false, &p) != PARSE_OK ||
	    (p.proto != IPPROTO_UDP && p.proto != IPPROTO_TCP))
		return XDP_PASS;
	ct4_packet_key(&p, CT_DIR_REPLY, &key);
	/* Found or not, the packet passes (this lab's backend never answers): what the ceiling
	 * pays is the lookup. */
	bpf_map_lookup_elem(&ct4, &key);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
