/* Packet parsing shared by every attach point: bounds-checked header cursors. */
#ifndef SLUICE_PARSE_H
#define SLUICE_PARSE_H

#include "common.h"

/* skb->data and skb->data_end, each loaded by its own instruction. Left to itself the compiler
 * may merge loads of the two fields from different places into one "ctx + register" access,
 * which the verifier refuses (dereference of modified ctx ptr). */
static __always_inline void *skb_data(const struct __sk_buff *skb)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(skb), "i"(offsetof(struct __sk_buff, data)));
	return p;
}

static __always_inline void *skb_data_end(const struct __sk_buff *skb)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(skb), "i"(offsetof(struct __sk_buff, data_end)));
	return p;
}

/* What the parser learned about one packet; ports are in network byte order. */
struct parsed_packet {
	__u16 l3_proto; /* ETH_P_IP or ETH_P_IPV6, host order; 0 when not IP */
	__u8 l4_proto;  /* IPPROTO_* */
	__be16 sport;
	__be16 dport;
	__u32 l3_len;   /* bytes from the IP header to the end of the packet */
	union {
		struct { __be32 saddr, daddr; } v4;
		struct { struct in6_addr saddr, daddr; } v6;
	};
};

/* Parses Ethernet, IPv4 (any options) or IPv6 (fixed header), then TCP/UDP ports.
 * Returns 0 on success, -1 when the packet is truncated or not IP. */
static __always_inline int parse_packet(void *data, void *data_end, struct parsed_packet *p)
{
	struct ethhdr *eth = data;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return -1;
	p->l3_proto = bpf_ntohs(eth->h_proto);
	p->l3_len = data_end - (void *)(eth + 1);
	if (p->l3_proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return -1;
		p->l4_proto = ip->protocol;
		p->v4.saddr = ip->saddr;
		p->v4.daddr = ip->daddr;
		l4 = (void *)ip + ip->ihl * 4;
	} else if (p->l3_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		p->l4_proto = ip6->nexthdr;
		p->v6.saddr = ip6->saddr;
		p->v6.daddr = ip6->daddr;
		l4 = ip6 + 1;
	} else {
		p->l3_proto = 0;
		return -1;
	}
	if (p->l4_proto == IPPROTO_TCP || p->l4_proto == IPPROTO_UDP) {
		/* TCP and UDP both start with the two ports. */
		struct udphdr *ports = l4;

		if ((void *)(ports + 1) > data_end)
			return -1;
		p->sport = ports->source;
		p->dport = ports->dest;
	}
	return 0;
}

/* ---- IPv4 for the per-packet stages (lb_tc.c): offsets, fragments, TCP flags, ICMP. ---- */

#define ETH_HLEN 14
#define ETH_ALEN 6
#define IP_MF 0x2000     /* frag_off, host order: more fragments */
#define IP_OFFSET 0x1fff /* frag_off, host order: fragment offset */

/* TCP flags byte (BSD names; vmlinux.h's TCP_FLAG_* are 32-bit network-order words). */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

enum parse_result {
	PARSE_OK = 0,        /* IPv4, and the TCP/UDP/ICMP header when that is the protocol */
	PARSE_NOT_IPV4 = 1,  /* not an IPv4 frame */
	PARSE_MALFORMED = 2, /* truncated, or a length or header field that cannot be right */
	PARSE_FRAGMENT = 3,  /* an IPv4 fragment; a first one has its ports parsed, later ones 0 */
};

/* One IPv4 packet in a frame. Offsets count from the start of the frame; addresses and ports
 * are in network order as on the wire. */
struct ipv4_packet {
	__u32 l3_off;
	__u32 l4_off;
	__u32 l4_csum_off; /* the TCP or UDP checksum field; 0 for other protocols */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;      /* TCP/UDP; 0 otherwise */
	__be16 dport;
	__u32 tot_len;     /* host order; the frame's IP length for BIG TCP */
	__u8 proto;
	__u8 ttl;
	__u8 tos;
	__u8 tcp_flags;    /* TH_* */
	__u8 icmp_type;
	__u8 icmp_code;
};

/* Parses Ethernet + IPv4 (options allowed) + the TCP, UDP or ICMP header. pkt_len is the whole
 * frame's length (skb->len), which may exceed data_end in paged skbs. The L3 and L4 headers
 * must be in [data, data_end); a TCP header's options need not be. gso: the skb is a GSO
 * packet, whose total length field may be 0 (IPv4 BIG TCP, over 64 KiB). */
static __always_inline int parse_ipv4(void *data, void *data_end, __u32 pkt_len, bool gso,
				      struct ipv4_packet *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	void *l4;
	__u32 hlen;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	hlen = ip->ihl * 4;
	p->tot_len = bpf_ntohs(ip->tot_len);
	if (!p->tot_len && gso)
		p->tot_len = pkt_len - ETH_HLEN;
	if (p->tot_len < hlen || p->tot_len > pkt_len - ETH_HLEN)
		return PARSE_MALFORMED;
	p->l3_off = ETH_HLEN;
	p->l4_off = ETH_HLEN + hlen;
	p->l4_csum_off = 0;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->sport = 0;
	p->dport = 0;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->tos = ip->tos;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->icmp_code = 0;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return PARSE_FRAGMENT;
	l4 = (void *)ip + hlen;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || tcp->doff < 5 || hlen + tcp->doff * 4 > p->tot_len)
			return PARSE_MALFORMED;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->l4_csum_off = p->l4_off + offsetof(struct tcphdr, check);
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || hlen + sizeof(*udp) > p->tot_len)
			return PARSE_MALFORMED;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->l4_csum_off = p->l4_off + offsetof(struct udphdr, check);
	} else if (p->proto == IPPROTO_ICMP) {
		struct icmphdr *icmp = l4;

		if ((void *)(icmp + 1) > data_end || hlen + sizeof(*icmp) > p->tot_len)
			return PARSE_MALFORMED;
		p->icmp_type = icmp->type;
		p->icmp_code = icmp->code;
	}
	/* A first fragment: its L4 header was parsed (the ports say which flow it starts). */
	if (ip->frag_off & bpf_htons(IP_MF))
		return PARSE_FRAGMENT;
	return PARSE_OK;
}

/* The IPv4 packet an ICMP error quotes: its header and at least the 8 bytes after it. */
struct ipv4_quote {
	__u32 l3_off;
	__u32 l4_off;
	__u32 l4_csum_off; /* 0 when the quote stops before it (a TCP header cut at 8 bytes) */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* Parses the quote from off (right after the ICMP header) to end (the end of the outer IP
 * packet; Ethernet padding after it is not quoted). PARSE_OK when the quote carries its ports,
 * PARSE_MALFORMED when it is cut shorter, PARSE_FRAGMENT for a quoted non-first fragment. */
static __always_inline int parse_ipv4_quote(void *data, void *data_end, __u32 off, __u32 end,
					    struct ipv4_quote *q)
{
	struct iphdr *ip;
	__be16 *ports;
	__u32 hlen;

	if (off > 255)
		return PARSE_MALFORMED;
	ip = data + off;
	if ((void *)(ip + 1) > data_end || off + sizeof(*ip) > end || ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return PARSE_FRAGMENT;
	hlen = ip->ihl * 4;
	q->l3_off = off;
	q->l4_off = off + hlen;
	q->saddr = ip->saddr;
	q->daddr = ip->daddr;
	q->proto = ip->protocol;
	q->pad[0] = q->pad[1] = q->pad[2] = 0;
	ports = (void *)ip + hlen;
	/* RFC 792 quotes 8 bytes of L4: the ports, and for UDP its checksum. */
	if ((void *)ports + 8 > data_end || q->l4_off + 8 > end)
		return PARSE_MALFORMED;
	q->sport = ports[0];
	q->dport = ports[1];
	q->l4_csum_off = 0;
	if (q->proto == IPPROTO_UDP)
		q->l4_csum_off = q->l4_off + offsetof(struct udphdr, check);
	/* The kernel updates a quoted TCP checksum only when the whole 20-byte header is there. */
	else if (q->proto == IPPROTO_TCP && (void *)ports + sizeof(struct tcphdr) <= data_end &&
		 q->l4_off + sizeof(struct tcphdr) <= end)
		q->l4_csum_off = q->l4_off + offsetof(struct tcphdr, check);
	return PARSE_OK;
}

#endif
