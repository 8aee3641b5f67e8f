/* The path ceilings of `sluice bench pps` (docs/pps.md): lb_xdp's forwarding of a NodePort's
 * UDP traffic to its one remote backend, with every lookup replaced by a constant from .rodata
 * (set by the scenario from the lab, src/bench/xdp-fwd.ts). xdp_baseline.c's xdp_fwd is that
 * alone; xdp_fwd_ct.c's xdp_fwd_ct adds the least connection tracking can do. */
#ifndef SLUICE_XDP_FWD_H
#define SLUICE_XDP_FWD_H

#include "common.h"
#include "ctx.h"
#include "parse.h"
#include "nat.h"
#include "fib.h"

/* nat.h's node_ipv4 is both the NodePort's address and the SNAT source; the rest in network
 * order. The next hop towards the backend (the backend node's fab0, as lb_xdp's FIB lookup
 * answers) and this node's fab0: 6 bytes in memory order in the low bytes, as xdp_gen.c's
 * fwd_dmac. */
const volatile __be16 path_nodeport = 0;
const volatile __be32 path_backend_addr = 0;
const volatile __be16 path_backend_port = 0;
const volatile __u64 path_dmac = 0;
const volatile __u64 path_smac = 0;

/* Whether a parsed frame is the ceiling's traffic: IPv4 UDP to the NodePort, TTL left. */
static __always_inline bool xdp_fwd_match(const struct ipv4_packet *p)
{
	return p->proto == IPPROTO_UDP && p->daddr == node_ipv4 && p->dport == path_nodeport &&
	       p->ttl > 1;
}

/* DNAT to the backend, SNAT to this node keeping the client's source port, TTL decremented,
 * incremental checksums, the path's MACs: out again by XDP_TX. */
static __always_inline int xdp_fwd_send(struct xdp_md *ctx, struct ipv4_packet *p, __be32 backend,
					__be16 backend_port)
{
	struct bpf_fib_lookup fib = {};
	struct nat4_target t;
	__u64 dmac = path_dmac, smac = path_smac;

	t.saddr = node_ipv4;
	t.sport = p->sport;
	t.daddr = backend;
	t.dport = backend_port;
	__builtin_memcpy(fib.dmac, &dmac, ETH_ALEN);
	__builtin_memcpy(fib.smac, &smac, ETH_ALEN);
	if (nat4_rewrite(ctx, p, &t) || fib4_rewrite_l2(ctx, p, &fib, true))
		return XDP_DROP;
	return XDP_TX;
}

#endif
