/* Per-protocol packet counters and a per-flow table: the layouts user space reads.
 * Every struct here has a BTF-checked codec in src/datapath/stats.ts. */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include "common.h"

/* Index into the per-CPU proto_stats array. Never renumber: dashboards key on it. */
enum stats_proto {
	STATS_PROTO_OTHER = 0,
	STATS_PROTO_TCP = 1,
	STATS_PROTO_UDP = 2,
	STATS_PROTO_ICMP = 3,
	STATS_PROTO_ICMPV6 = 4,
	STATS_PROTO_NON_IP = 5,
	STATS_PROTO_MAX,
};

struct proto_counter {
	__u64 packets;
	__u64 bytes;
};

/* IPv4 5-tuple; explicit padding so C, TypeScript and a map dump agree. */
struct flow_key_v4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_counters {
	__u64 packets;
	__u64 bytes;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
};

/* Sent on the ring buffer when a flow is seen for the first time. */
struct flow_event {
	struct flow_key_v4 key;
	__u64 timestamp_ns;
	__u32 ifindex;
	__u32 pad;
};

#endif
