// SPDX-License-Identifier: GPL-2.0
/* Counts and drops IPv4 UDP: attached to the backend pod's eth0 by `sluice bench pps`, so what
 * is measured is the packets that reached the backend, not the backend's own stack. Everything
 * else (ARP above all: the node must resolve the pod's address to forward to it) passes. */
#include "common.h"
#include "pktgen.h"

PKTCOUNT_MAP_DEF;

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 key = 0;
	__u64 *c;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	c = bpf_map_lookup_elem(&pkt_count, &key);
	if (c)
		(*c)++;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
