/* Internet checksums: incremental updates (RFC 1624), computed in registers.
 *
 * A rewrite accumulates the change of every 16-bit word it makes (csum_acc*) and applies the
 * sum to each checksum that covers those words (csum_apply). The IPv4 header checksum and the
 * checksums inside an ICMP error's quoted packet are plain data and written directly; the
 * packet's own TCP/UDP checksum goes through ctx_l4_csum_update (ctx.h), which at TC lets the
 * kernel helper follow the skb's checksum state. Every change is compensated by a checksum
 * that covers it, so the packet's one's complement sum, and skb->csum with it, is kept.
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

#endif
