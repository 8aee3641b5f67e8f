// SPDX-License-Identifier: GPL-2.0
/* The smallest programs there are: `sluice doctor` attaches them to a veth inside a scratch
 * network namespace (sl-doctor-<pid>) to prove that native XDP and TC (clsact) attach work. */
#include "common.h"

SEC("xdp")
int doctor_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int doctor_tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
