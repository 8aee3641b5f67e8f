// SPDX-License-Identifier: GPL-2.0
/* Maps only: the object `sluice bench maps` loads from TypeScript and from C alike, so both
 * sides program the very same map definition. */
#include "common.h"
#include "bench.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000000);
	__type(key, struct bench_key);
	__type(value, struct bench_value);
} bench_hash SEC(".maps");


char LICENSE[] SEC("license") = "GPL";
