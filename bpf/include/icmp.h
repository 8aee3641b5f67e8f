/* ICMP errors the datapath sends itself: "port unreachable" for a service with no endpoint, as
 * kube-proxy's REJECT rule does, so a client fails at once instead of timing out.
 *
 * The packet is turned into the error in place (RFC 792: the offending IP header and the first
 * 8 bytes after it are quoted) and sent back the way it came. Rate-limited like the kernel's own
 * errors (net.ipv4.icmp_msgs_per_sec): a fixed one-second window shared by all CPUs. */
#ifndef SLUICE_ICMP_H
#define SLUICE_ICMP_H

#include "common.h"
#include "csum.h"
#include "parse.h"

#define ICMP_PORT_UNREACH 3
#define IPTOS_PREC_INTERNETCONTROL 0xc0

/* Errors sent per second, all CPUs together; 0: never answer, drop instead. */
const volatile __u32 icmp_errors_per_sec = 1000;

/* The rate limiter's window (.bss, not pinned: a reload starts a new window). */
static __u64 icmp_window_start_ns;
static __u32 icmp_window_sent;

static __always_inline bool icmp4_error_allowed(__u64 now)
{
	if (!icmp_errors_per_sec)
		return false;
	if (now - icmp_window_start_ns >= 1000000000ULL) {
		icmp_window_start_ns = now;
		icmp_window_sent = 0;
	}
	if (icmp_window_sent >= icmp_errors_per_sec)
		return false;
	/* Racy by a few errors under contention, which a limit can afford; an atomic fetch-add's
	 * result would need -mcpu=v3. */
	__sync_fetch_and_add(&icmp_window_sent, 1);
	return true;
}

/* Addresses that must never get an ICMP error (RFC 1122 3.2.2): unspecified, multicast,
 * limited broadcast. */
static __always_inline bool icmp4_may_answer(__be32 src)
{
	__u32 a = bpf_ntohl(src);

	return a != 0 && (a >> 28) != 0xe && a != 0xffffffff;
}

/* The new headers, contiguous from eth: the leading pad aligns ip and icmp for the helpers. */
struct icmp4_error_hdr {
	__u8 pad[2];
	struct ethhdr eth;
	struct iphdr ip;
	struct icmphdr icmp;
};
#define ICMP4_ERROR_HLEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct icmphdr))

/* RFC 792: the offending IP header and the first 8 bytes of its payload. */
#define ICMP4_QUOTE_LEN (sizeof(struct iphdr) + 8)

/* Rewrites the TCP/UDP packet p into an ICMP destination unreachable (code) from its
 * destination to its source, MACs swapped. Only packets without IP options: their quote has a
 * constant length. Returns 0, or a negative errno (the packet may then be half-written: drop
 * it). */
static __always_inline int icmp4_unreach_in_place(struct __sk_buff *skb, const struct ipv4_packet *p, __u8 code)
{
	__u8 quote[ICMP4_QUOTE_LEN];
	struct icmp4_error_hdr h = {};
	__u8 mac[ETH_ALEN];
	__u32 sum;
	int ret;

	if (p->l4_off - p->l3_off != sizeof(struct iphdr))
		return -1;
	ret = bpf_skb_load_bytes(skb, 0, &h.eth, sizeof(h.eth));
	ret = ret ?: bpf_skb_load_bytes(skb, p->l3_off, quote, sizeof(quote));
	if (ret)
		return ret;

	/* Back to the sender: swap the MACs. */
	__builtin_memcpy(mac, h.eth.h_dest, ETH_ALEN);
	__builtin_memcpy(h.eth.h_dest, h.eth.h_source, ETH_ALEN);
	__builtin_memcpy(h.eth.h_source, mac, ETH_ALEN);
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tos = IPTOS_PREC_INTERNETCONTROL;
	h.ip.tot_len = bpf_htons(sizeof(h.ip) + sizeof(h.icmp) + sizeof(quote));
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_ICMP;
	h.ip.saddr = p->daddr;
	h.ip.daddr = p->saddr;
	h.ip.check = ~csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	h.icmp.type = ICMP_DEST_UNREACH;
	h.icmp.code = code;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.icmp, sizeof(h.icmp), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)quote, sizeof(quote), sum);
	h.icmp.checksum = ~csum_fold(sum);

	ret = bpf_skb_change_tail(skb, ICMP4_ERROR_HLEN + sizeof(quote), 0);
	ret = ret ?: bpf_skb_store_bytes(skb, 0, &h.eth, ICMP4_ERROR_HLEN, BPF_F_INVALIDATE_HASH);
	return ret ?: bpf_skb_store_bytes(skb, ICMP4_ERROR_HLEN, quote, sizeof(quote), 0);
}

#endif
