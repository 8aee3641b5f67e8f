/* Forwarding a translated packet without the stack: FIB lookup, TTL, redirect.
 *
 * After NAT at TC ingress the stack cannot always route the packet: a source that is now one of
 * the node's own addresses (SNAT, or a reply leaving as NodeIP:nodePort) is a martian to the
 * input route check. So translated packets take the next hop from the kernel's FIB, with the
 * routes the node already has (pod /32s on their veths, other nodes' pod CIDRs via their node
 * address): known neighbour -> MACs written and bpf_redirect; unresolved neighbour ->
 * bpf_redirect_neigh, which resolves it. The TTL is decremented as forwarding would.
 * Anything else (a local destination, no route, MTU exceeded, forwarding disabled, TTL
 * exhausted) goes to the stack, which delivers it or answers with the right ICMP error.
 * The lookup and the L2 rewrite serve XDP too (lb_xdp.c decides XDP_TX or pass itself). */
#ifndef SLUICE_FIB_H
#define SLUICE_FIB_H

#include "common.h"
#include "csum.h"
#include "ctx.h"
#include "parse.h"
#include "verdicts.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef TC_ACT_REDIRECT
#define TC_ACT_REDIRECT 7
#endif

/* Looks up the next hop of a packet that now goes saddr -> daddr, as if it arrived on the
 * context's device. tot_len 0 leaves the MTU check to the kernel (TC: GSO-aware, at
 * redirect); XDP passes the length the packet will leave with. Flags 0: route as if the packet
 * arrived on that device (policy rules by input interface apply). */
static __always_inline long fib4_lookup(struct __ctx_buff *ctx, const struct ipv4_packet *p, __be32 saddr,
					__be32 daddr, __u16 tot_len, struct bpf_fib_lookup *fib)
{
	fib->family = AF_INET;
	fib->l4_protocol = p->proto;
	fib->tos = p->tos;
	fib->tot_len = tot_len;
	fib->ifindex = ctx_ifindex(ctx);
	fib->ipv4_src = saddr;
	fib->ipv4_dst = daddr;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* What forwarding does to the frame: TTL decremented (and the IP checksum with it, the TTL
 * being the high byte of the word it shares with the protocol), MACs from the FIB. Direct
 * writes; returns 0, or -1 when the headers are not there. */
static __always_inline int fib4_rewrite_l2(struct __ctx_buff *ctx, const struct ipv4_packet *p,
					   const struct bpf_fib_lookup *fib, bool macs)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 ttl = p->ttl - 1;

	if ((void *)(ip + 1) > data_end)
		return -1;
	ip->check = csum_apply(ip->check, csum_acc16(0, bpf_htons((__u16)p->ttl << 8), bpf_htons((__u16)ttl << 8)));
	ip->ttl = ttl;
	if (macs) {
		/* struct ethhdr: destination, then source (bpf_fib_lookup has them the other way). */
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
	return 0;
}

#ifdef SLUICE_CTX_SKB
/* Sends the packet (now saddr -> daddr) towards daddr from TC. Returns the TC action and counts
 * how the packet left (VERDICT_DELIVER_*), or VERDICT_DROP_WRITE with TC_ACT_SHOT. */
static __always_inline int fib4_redirect(struct __sk_buff *skb, const struct ipv4_packet *p, __be32 saddr,
					 __be32 daddr)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	__u32 len = skb->len;
	long rc;

	rc = fib4_lookup(skb, p, saddr, daddr, 0, &fib);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		verdict_count(VERDICT_DELIVER_STACK, len);
		return TC_ACT_OK;
	}
	if (p->ttl <= 1) {
		verdict_count(VERDICT_DELIVER_TTL, len);
		return TC_ACT_OK;
	}
	if (fib4_rewrite_l2(skb, p, &fib, rc == BPF_FIB_LKUP_RET_SUCCESS)) {
		verdict_count(VERDICT_DROP_WRITE, len);
		return TC_ACT_SHOT;
	}
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		verdict_count(VERDICT_DELIVER_REDIRECT, len);
		return bpf_redirect(fib.ifindex, 0);
	}
	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib.ipv4_dst; /* the gateway when the route has one */
	verdict_count(VERDICT_DELIVER_REDIRECT_NEIGH, len);
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}
#endif

#endif
