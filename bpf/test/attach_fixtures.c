// SPDX-License-Identifier: GPL-2.0
/* Test fixture: one trivial program per attach point, each counting its calls, so tests can
 * prove an attach took effect (the counter moves) and a detach undid it (it stops). */
#include "common.h"

enum hook { HOOK_XDP, HOOK_TC, HOOK_CONNECT4, HOOK_SENDMSG4, HOOK_RECVMSG4, HOOK_GETPEERNAME4,
	    HOOK_SOCKOPS, HOOK_SK_MSG, HOOK_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HOOK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hook_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} sock_hash SEC(".maps");

static __always_inline void count(__u32 hook)
{
	__u64 *n = bpf_map_lookup_elem(&hook_calls, &hook);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	count(HOOK_XDP);
	return XDP_PASS;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	count(HOOK_TC);
	return TC_ACT_OK;
}

SEC("cgroup/connect4")
int connect4_count(struct bpf_sock_addr *ctx)
{
	count(HOOK_CONNECT4);
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4_count(struct bpf_sock_addr *ctx)
{
	count(HOOK_SENDMSG4);
	return 1;
}

SEC("cgroup/recvmsg4")
int recvmsg4_count(struct bpf_sock_addr *ctx)
{
	count(HOOK_RECVMSG4);
	return 1;
}

SEC("cgroup/getpeername4")
int getpeername4_count(struct bpf_sock_addr *ctx)
{
	count(HOOK_GETPEERNAME4);
	return 1;
}

SEC("sockops")
int sockops_count(struct bpf_sock_ops *ctx)
{
	count(HOOK_SOCKOPS);
	return 1;
}

SEC("sk_msg")
int sk_msg_count(struct sk_msg_md *msg)
{
	count(HOOK_SK_MSG);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
