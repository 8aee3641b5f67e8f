// SPDX-License-Identifier: GPL-2.0
/* Test fixture: one map of every type the binding supports, for the typed-map tests. */
#include "common.h"

struct test_key {
	__u32 id;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct test_value {
	__u64 packets;
	__u32 addr;
	__u32 flags;
};

#define KV_MAP(name, map_type, n, k, v) \
	struct {                        \
		__uint(type, map_type); \
		__uint(max_entries, n); \
		__type(key, k);         \
		__type(value, v);       \
	} name SEC(".maps")

KV_MAP(t_hash, BPF_MAP_TYPE_HASH, 1024, struct test_key, struct test_value);
KV_MAP(t_lru_hash, BPF_MAP_TYPE_LRU_HASH, 128, struct test_key, struct test_value);
KV_MAP(t_array, BPF_MAP_TYPE_ARRAY, 8, __u32, struct test_value);
KV_MAP(t_percpu_hash, BPF_MAP_TYPE_PERCPU_HASH, 64, struct test_key, struct test_value);
KV_MAP(t_percpu_array, BPF_MAP_TYPE_PERCPU_ARRAY, 4, __u32, __u64);
KV_MAP(t_lru_percpu_hash, BPF_MAP_TYPE_LRU_PERCPU_HASH, 64, struct test_key, __u64);

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} t_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_array);
} t_array_of_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_array);
} t_hash_of_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} t_sockhash SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
