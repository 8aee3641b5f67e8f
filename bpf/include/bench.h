/* Layouts of the map-throughput benchmark (sluice bench maps): a 16-byte key and a
 * 32-byte value, the size of a service frontend key and a backend entry. */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

#include "common.h"

struct bench_key {
	__u64 id;
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct bench_value {
	__u64 a;
	__u64 b;
	__u64 c;
	__u64 d;
};

#endif
