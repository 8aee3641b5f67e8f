/* Forwarding a translated packet without the stack: FIB lookup, TTL, redirect.
 *
 * After NAT at TC ingress the stack cannot always route the packet: a source that is now one of
 * the node's own addresses (SNAT, or a reply leaving as NodeIP:nodePort) is a martian to the
 * input route check. So translated packets take the next hop from the kernel's FIB, with the
 * routes the node already has (pod /32s on their veths, other nodes' pod CIDRs via their node
 * address): known neighbour -> MACs written and bpf_redirect; unresolved neighbour ->
 * bpf_redirect_neigh, which resolves it. The TTL is decremented as forwarding would.
 * Anything else (a local destination, no route, MTU exceeded, forwarding disabled, TTL
 * exhausted) goes to the stack, which delivers it or answers with the right ICMP error. */
#ifndef SLUICE_FIB_H
#define SLUICE_FIB_H

#include "common.h"
#include "csum.h"
#include "parse.h"
#include "verdicts.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef TC_ACT_REDIRECT
#define TC_ACT_REDIRECT 7
#endif

static __always_inline int fib4_dec_ttl(struct __sk_buff *skb, const struct ipv4_packet *p)
{
	__u8 ttl = p->ttl - 1;
	/* TTL is the high byte of the 16-bit word it shares with the protocol. */
	__be16 old = bpf_htons((__u16)p->ttl << 8), new = bpf_htons((__u16)ttl << 8);
	int ret;

	ret = bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), old, new, sizeof(new));
	return ret ?: bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct iphdr, ttl), &ttl, sizeof(ttl), 0);
}

/* Sends the packet (now saddr -> daddr) towards daddr. Returns the TC action and counts how the
 * packet left (VERDICT_DELIVER_*), or VERDICT_DROP_WRITE with TC_ACT_SHOT. */
static __always_inline int fib4_redirect(struct __sk_buff *skb, const struct ipv4_packet *p, __be32 saddr,
					 __be32 daddr)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	__u32 len = skb->len;
	long rc;

	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.tos = p->tos;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	/* tot_len 0: the kernel checks the skb against the egress MTU itself, GSO-aware. Flags 0:
	 * route as if the packet arrived on skb->ifindex (policy rules by input interface apply). */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		verdict_count(VERDICT_DELIVER_STACK, len);
		return TC_ACT_OK;
	}
	if (p->ttl <= 1) {
		verdict_count(VERDICT_DELIVER_TTL, len);
		return TC_ACT_OK;
	}
	if (fib4_dec_ttl(skb, p))
		goto write_failed;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		/* struct ethhdr: destination, then source (bpf_fib_lookup has them the other way). */
		__u8 macs[2 * ETH_ALEN];

		__builtin_memcpy(macs, fib.dmac, ETH_ALEN);
		__builtin_memcpy(macs + ETH_ALEN, fib.smac, ETH_ALEN);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
			goto write_failed;
		verdict_count(VERDICT_DELIVER_REDIRECT, len);
		return bpf_redirect(fib.ifindex, 0);
	}
	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib.ipv4_dst; /* the gateway when the route has one */
	verdict_count(VERDICT_DELIVER_REDIRECT_NEIGH, len);
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);

write_failed:
	verdict_count(VERDICT_DROP_WRITE, len);
	return TC_ACT_SHOT;
}

#endif
