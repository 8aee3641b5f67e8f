/* Internet checksums: incremental updates (RFC 1624), two ways.
 *
 * - The packet's own IPv4 and L4 checksums are updated with the kernel helpers
 *   (bpf_l3_csum_replace / bpf_l4_csum_replace). They know the skb's checksum state: with
 *   CHECKSUM_PARTIAL (offloaded, locally sent) the L4 field holds only the pseudo-header sum,
 *   so address changes (BPF_F_PSEUDO_HDR) update it and port changes must not; with
 *   CHECKSUM_COMPLETE they keep skb->csum right. UDP's "no checksum" (0) stays 0
 *   (BPF_F_MARK_MANGLED_0), and a computed 0 is sent as 0xffff.
 * - Checksums inside an ICMP error's quoted packet are plain data: they are computed here in
 *   registers (csum_acc*, csum_apply) and written with the quoted bytes. Each change there is
 *   compensated in the ICMP checksum, so the message's sum, and skb->csum with it, is kept.
 *
 * All arithmetic works on 16-bit words exactly as they sit in the packet (network order read as
 * host integers): one's complement sums do not care about byte order, as long as every word is
 * read and written the same way. */
#ifndef SLUICE_CSUM_H
#define SLUICE_CSUM_H

#include "common.h"

/* Accumulates the change of one 16-bit word: ~old + new (RFC 1624, eqn. 3). */
static __always_inline __u32 csum_acc16(__u32 acc, __u16 old, __u16 new)
{
	return acc + (__u16)~old + new;
}

/* Accumulates the change of a 32-bit field (an IPv4 address) as two 16-bit words. */
static __always_inline __u32 csum_acc32(__u32 acc, __u32 old, __u32 new)
{
	acc = csum_acc16(acc, old & 0xffff, new & 0xffff);
	return csum_acc16(acc, old >> 16, new >> 16);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* The checksum field after the changes accumulated in acc: HC' = ~(~HC + sum of changes). */
static __always_inline __u16 csum_apply(__u16 check, __u32 acc)
{
	return ~csum_fold((__u16)~check + acc);
}

/* Same for a UDP checksum: 0 means "none" and stays 0; a result of 0 is sent as 0xffff. */
static __always_inline __u16 csum_apply_udp(__u16 check, __u32 acc)
{
	__u16 out;

	if (!check)
		return 0;
	out = csum_apply(check, acc);
	return out ? out : 0xffff;
}

/* Helper-based updates of the packet's own checksums. Return 0 or a negative errno. */

/* An IPv4 address changed: the IP header checksum and, through the pseudo-header, the L4 one.
 * l4_csum_off is 0 when the L4 protocol has no pseudo-header checksum (ICMP). */
static __always_inline int csum_l3_addr(struct __sk_buff *skb, __u32 ip_csum_off, __u32 l4_csum_off,
					bool udp, __be32 old, __be32 new)
{
	int ret;

	if (l4_csum_off) {
		__u64 flags = BPF_F_PSEUDO_HDR | sizeof(new) | (udp ? BPF_F_MARK_MANGLED_0 : 0);

		ret = bpf_l4_csum_replace(skb, l4_csum_off, old, new, flags);
		if (ret)
			return ret;
	}
	return bpf_l3_csum_replace(skb, ip_csum_off, old, new, sizeof(new));
}

/* A port changed: only the L4 checksum covers it. */
static __always_inline int csum_l4_port(struct __sk_buff *skb, __u32 l4_csum_off, bool udp, __be16 old,
					__be16 new)
{
	__u64 flags = sizeof(new) | (udp ? BPF_F_MARK_MANGLED_0 : 0);

	return bpf_l4_csum_replace(skb, l4_csum_off, old, new, flags);
}

#endif
