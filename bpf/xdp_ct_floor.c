// SPDX-License-Identifier: GPL-2.0
/* The physical floor of a new flow's conntrack writes, for `sluice bench prog-cost` (case
 * xdp-ct-insert-floor): only the two inserts lb_xdp makes for a new SNATed flow, then XDP_PASS.
 * The REPLY entry with BPF_NOEXIST (nat4_snat_claim's claim of a free port), then the FORWARD
 * entry with BPF_ANY (stage_ct_create), into conntrack.h's ct4: a map of the same type (LRU
 * hash), size and flags as the datapath's, this object's own. No parsing, no lookups, no random
 * port: each run makes a new flow from a counter, so no insert collides. Whatever lb_xdp costs
 * beyond this program, for a new flow, is the rest of its pipeline. */
#include "common.h"
#include "conntrack.h"

/* Host order: the cost harness's client, node and remote backend (lb-tc-harness.ts). */
#define FLOOR_CLIENT 0xc6120002 /* 198.18.0.2 */
#define FLOOR_NODE 0xc612000a   /* 198.18.0.10 */
#define FLOOR_POD_B 0xc6121107  /* 198.18.17.7 */

__u32 ct_floor_seq;

SEC("xdp")
int xdp_ct_insert_floor(struct xdp_md *ctx)
{
	__u32 n = ct_floor_seq++;
	struct ct4_entry e = {
		.expires_ns = ~0ULL,
		.client_addr = bpf_htonl(FLOOR_CLIENT + (n >> 16)),
		.client_port = bpf_htons(n & 0xffff),
		.frontend_addr = bpf_htonl(FLOOR_NODE),
		.frontend_port = bpf_htons(30082),
		.backend_addr = bpf_htonl(FLOOR_POD_B + (n >> 16)),
		.backend_port = bpf_htons(8080),
		.snat_addr = bpf_htonl(FLOOR_NODE),
		.snat_port = bpf_htons(n & 0xffff),
		.state = CT_STATE_SYN_SENT,
		.flags = CT_F_SNAT,
	};
	struct ct4_key fwd, reply;

	ct4_forward_key(&e, IPPROTO_TCP, &fwd);
	ct4_reply_key(&e, IPPROTO_TCP, &reply);
	/* A failed insert is not a cheaper run: it says so, and the harness refuses the figure. */
	if (bpf_map_update_elem(&ct4, &reply, &e, BPF_NOEXIST))
		return XDP_ABORTED;
	if (bpf_map_update_elem(&ct4, &fwd, &e, BPF_ANY))
		return XDP_ABORTED;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
