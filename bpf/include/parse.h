/* Packet parsing shared by every attach point: bounds-checked header cursors. */
#ifndef SLUICE_PARSE_H
#define SLUICE_PARSE_H

#include "common.h"

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

#endif
