// SPDX-License-Identifier: GPL-2.0
/* The machine's packet-rate ceilings for `sluice bench pps`, attached to the forwarding node's
 * uplink (fab0) in a lab with no proxy: the least an XDP program can do with a packet.
 * - xdp_drop_count: count and drop (mode xdp-drop).
 * - xdp_tx_swap: swap the Ethernet addresses and send the frame back out (mode xdp-tx); the
 *   frames go back to the sender, where xdp_count counts what was delivered. */
#include "common.h"
#include "parse.h"
#include "pktgen.h"

PKTCOUNT_MAP_DEF;

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *c = bpf_map_lookup_elem(&pkt_count, &key);

	if (c)
		(*c)++;
	return XDP_DROP;
}

SEC("xdp")
int xdp_tx_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
