// SPDX-License-Identifier: GPL-2.0
/* The packet generator's XDP program, run by native/xdp_gen with BPF_PROG_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES: the kernel hands it a page-pool frame initialised once with the
 * 64-byte IPv4 UDP template (bpf/include/pktgen.h), the program gives each packet its source
 * port (and source address), fixes both checksums and redirects the frame out of gen_ifindex.
 *
 * Live frames are recycled without being re-copied from the template, and a frame that went up
 * the stack comes back as the last hop left it (MACs rewritten by routers, addresses by NAT,
 * TTL decremented): so the program writes the whole frame every time, the template from
 * .rodata and then the varying fields, with both checksums computed from sums user space
 * precomputed over everything that never changes. */
#include "common.h"
#include "csum.h"
#include "pktgen.h"

/* Load-time config (.rodata), set by native/xdp_gen. */
const volatile __u32 gen_ifindex = 0;
/* The frame, with source address, source port and both checksums zero. */
const volatile __u64 gen_template[PKTGEN_FRAME_LEN / 8] = {};
/* Distinct flows before the sequence repeats; 0: never repeat (a new 5-tuple per packet). */
const volatile __u32 gen_flows = 0;
/* First source address (network order) and how many consecutive ones to use. */
const volatile __u32 gen_saddr = 0;
const volatile __u32 gen_saddr_count = 1;
/* Source ports: gen_sport_base, +1, ... (gen_sport_count of them), host order. */
const volatile __u32 gen_sport_base = 1024;
const volatile __u32 gen_sport_count = 64512;
/* One's complement sums (unfolded) of the IPv4 header and of the UDP pseudo-header, header and
 * payload, with the source address, the source port and the checksums taken as zero. */
const volatile __u32 gen_ip_sum = 0;
const volatile __u32 gen_udp_sum = 0;

/* Packets generated so far: the generator runs on one CPU, one program run at a time. */
__u64 gen_seq = 0;

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 n = gen_seq++;
	__u32 saddr, sum;
	__u16 sport, check;

	if (data + PKTGEN_FRAME_LEN > data_end)
		return XDP_ABORTED;
	for (int i = 0; i < PKTGEN_FRAME_LEN / 8; i++)
		((__u64 *)data)[i] = gen_template[i];
	if (gen_flows)
		n %= gen_flows;
	sport = bpf_htons(gen_sport_base + n % gen_sport_count);
	saddr = bpf_htonl(bpf_ntohl(gen_saddr) + (__u32)((n / gen_sport_count) % gen_saddr_count));

	*(__u32 *)(data + PKTGEN_OFF_SADDR) = saddr;
	sum = gen_ip_sum + (saddr & 0xffff) + (saddr >> 16);
	*(__u16 *)(data + PKTGEN_OFF_IP_CHECK) = ~csum_fold(sum);

	*(__u16 *)(data + PKTGEN_OFF_SPORT) = sport;
	sum = gen_udp_sum + (saddr & 0xffff) + (saddr >> 16) + sport;
	check = ~csum_fold(sum);
	*(__u16 *)(data + PKTGEN_OFF_UDP_CHECK) = check ? check : 0xffff;

	return bpf_redirect(gen_ifindex, 0);
}

/* The switch port the generator's frames enter (the fabric's side of the external eth0): frames
 * for fwd_dmac (node 0's uplink) are redirected straight to the bridge port fwd_ifindex leads
 * to, as a hardware switch would carry them, instead of costing the generator's CPU a socket
 * buffer and a trip through the Linux bridge. Only IPv4 UDP: ARP and pings still cross the
 * bridge, which so keeps learning where everyone is. */
const volatile __u32 fwd_ifindex = 0;
/* The destination MAC, its 6 bytes in memory order in the low bytes. */
const volatile __u64 fwd_dmac = 0;

SEC("xdp")
int xdp_gen_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 dmac = fwd_dmac;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (*(__u32 *)eth->h_dest != (__u32)dmac || *(__u16 *)(eth->h_dest + 4) != (__u16)(dmac >> 32))
		return XDP_PASS;
	return bpf_redirect(fwd_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
