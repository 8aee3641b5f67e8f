/* One enum of verdicts and drop reasons for every sluice datapath program, and the per-CPU
 * counters indexed by it. Tools show each counter by name (src/datapath/lb-tc.ts, Verdict).
 *
 * NEVER renumber or reuse a value: dashboards, pinned counters and `sluice` tools key on them.
 * Append new values. Passes and translations are below 128, drops are 128 and above, so a tool
 * can tell a drop without knowing every name. Every codec lives in src/datapath/lb-tc.ts. */
#ifndef SLUICE_VERDICTS_H
#define SLUICE_VERDICTS_H

#include "common.h"

enum verdict {
	/* The packet goes on untouched. */
	VERDICT_PASS_NOT_IPV4 = 0,      /* ARP, IPv6 (until it lands), anything not IPv4 */
	VERDICT_PASS_NO_SERVICE = 1,    /* IPv4 with no live conntrack entry and no frontend */
	VERDICT_PASS_FRAGMENT = 2,      /* an IPv4 fragment: its ports are unknown */
	VERDICT_PASS_MALFORMED = 3,     /* truncated or invalid headers: the stack drops it */
	VERDICT_PASS_OTHER_PROTO = 4,   /* neither TCP, UDP nor ICMP */
	VERDICT_PASS_ICMP = 5,          /* ICMP that is not an error about a tracked flow */
	VERDICT_PASS_TCP_RST = 6,       /* a TCP RST to a frontend with no flow: nothing to reset */
	VERDICT_PASS_DSR_FLOW = 7,      /* a DSR flow's packet to its backend here: REPLY entry learned
					 * or refreshed (dsr.h), the packet goes on as it came */

	/* The packet was translated. */
	VERDICT_NEW_FLOW = 16,          /* frontend hit: backend selected, DNAT (+SNAT), entries made */
	VERDICT_CT_FORWARD = 17,        /* conntrack hit, original direction: translated by the entry */
	VERDICT_CT_REPLY = 18,          /* conntrack hit, reply direction: reverse-translated */
	VERDICT_ICMP_ERROR = 19,        /* ICMP error about a tracked flow: outer and inner translated */
	VERDICT_REJECT_NO_BACKEND = 20, /* cluster policy, no usable endpoint: answered with ICMP port
					 * unreachable, as kube-proxy's REJECT (sent back where it came from) */
	VERDICT_DSR_LEARNED = 21,       /* a backend's node made the REPLY entry a DSR option asked for
					 * (counted in addition to the packet's own verdict) */

	/* How a translated packet left the program (counted in addition to the above). */
	VERDICT_DELIVER_REDIRECT = 32,       /* to the FIB's device, MACs from the FIB */
	VERDICT_DELIVER_REDIRECT_NEIGH = 33, /* to the FIB's device, MACs from the neighbour table */
	VERDICT_DELIVER_STACK = 34,          /* to the stack: egress hook, local destination, no route */
	VERDICT_DELIVER_TTL = 35,            /* to the stack, TTL exhausted: it sends time exceeded */
	VERDICT_DELIVER_XDP_TX = 40,         /* XDP: out of the device it arrived on (XDP_TX) */
	VERDICT_XDP_HANDOFF = 41,            /* XDP: decided (conntrack entry made or found), left to
					      * TC to translate and deliver (a local pod, no neighbour) */

	/* Drops. */
	VERDICT_DROP_NO_BACKEND = 128,       /* cluster policy, no usable endpoint, and no ICMP error
					      * allowed (rate limit, source address) */
	VERDICT_DROP_NO_LOCAL_BACKEND = 129, /* traffic policy Local, no endpoint on this node */
	VERDICT_DROP_BACKEND_MISSING = 130,  /* a slot names a backend id lb4_backends lacks */
	VERDICT_DROP_SNAT_EXHAUSTED = 131,   /* no free SNAT port towards this backend */
	VERDICT_DROP_SNAT_NO_ADDRESS = 132,  /* SNAT needed but node_ipv4 is not configured */
	VERDICT_DROP_CT_CLASH = 133,         /* the reply tuple belongs to another live flow, and no
					      * other source port was free */
	VERDICT_DROP_CT_CREATE = 134,        /* the conntrack map refused the entry */
	VERDICT_DROP_WRITE = 135,            /* a packet rewrite failed: the packet may be half-written */
	VERDICT_DROP_POLICY = 136,           /* reserved for the policy stage */
	VERDICT_DROP_MALFORMED = 144,        /* XDP: truncated or invalid IPv4/TCP/UDP/ICMP headers */
	VERDICT_DROP_FRAGMENT = 145,         /* XDP: a first fragment to a frontend (not balanced) */
	VERDICT_DROP_DSR_NO_ROOM = 146,      /* DSR: no room for the option (40 bytes of options) */
};

/* Room for every value present and future: appending never resizes the pinned map. */
#define VERDICT_SLOTS 256

struct verdict_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_SLOTS);
	__type(key, __u32);
	__type(value, struct verdict_counter);
} verdict_stats SEC(".maps");

static __always_inline void verdict_count(__u32 verdict, __u32 bytes)
{
	struct verdict_counter *c = bpf_map_lookup_elem(&verdict_stats, &verdict);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

#endif
