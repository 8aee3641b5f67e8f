// SPDX-License-Identifier: GPL-2.0
/* The path ceiling of a load balancer that tracks connections (mode xdp-fwd-ct of `sluice bench
 * pps`, docs/pps.md): xdp_fwd (xdp_fwd.h) plus the least conntrack any such design does at the
 * node that balances: one lookup of the packet's flow, and for a flow not seen before one entry
 * written, into a map of the datapath's kind and size (conntrack.h's ct4: LRU, 262,144
 * entries). A known flow goes to the backend its entry names. Nothing else: no timestamps on a
 * hit, no refresh, no second entry for replies (sluice writes a REPLY entry too when it SNATs),
 * no counters. Sluice's lb_xdp does all of this and more, so with `new` flows (an insert per
 * packet) no program that tracks connections delivers more on this path than this one. */
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
	struct ct4_key key = {};
	struct ct4_entry *e;

	if (parse_ipv4(data, data_end, data_end - data, false, &p) != PARSE_OK || !xdp_fwd_match(&p))
		return XDP_PASS;
	key.saddr = p.saddr;
	key.daddr = p.daddr;
	key.sport = p.sport;
	key.dport = p.dport;
	key.proto = p.proto;
	key.dir = CT_DIR_FORWARD;
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

char LICENSE[] SEC("license") = "GPL";
