// SPDX-License-Identifier: GPL-2.0
/* Test fixture: compiles cleanly, but the verifier must reject it (packet read without a
 * bounds check), so tests can prove a failed load reports the verifier's words and leaves
 * nothing behind. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} reject_pinned SEC(".maps");

SEC("xdp")
int read_unchecked(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;

	return data[20] ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
