/* Maglev consistent hashing for external traffic (NodePort, LoadBalancer, externalIPs): a flow's
 * 5-tuple hash picks a slot of its service's lookup table, so every node that holds the same
 * table sends the flow to the same backend (an ECMP router may hand a flow to any node, and to
 * another one when the node set changes). The tables are computed in user space from the
 * backends' names (src/model/maglev.ts) and written by src/datapath/maglev.ts; docs/maglev.md.
 *
 * Layout: lb_maglev is a hash of maps, service_id -> an ARRAY of lb_maglev_table_size backend
 * ids. Not one large array indexed service_id * M + slot: service ids are sparse and grow for
 * the agent's lifetime (never reused while it runs, see src/agent/diff.ts), and only services
 * with external frontends need a table, so a flat array would have to preallocate M * 4 bytes
 * (64 KiB at M = 16381) for every possible id. Inner arrays cost memory only for the services
 * that have one, a new table is filled completely before it is linked in (make-before-break),
 * and a changed one is updated slot by slot in place. BPF_F_INNER_MAP lets inner arrays of any
 * size be linked, so the table size stays a load-time setting (.rodata) rather than a compile
 * one. Each array element holds LB_MAGLEV_SLOTS_PER_ELEM slots: array elements are padded to 8
 * bytes, so one u32 per element would double the memory; 16 per element (a cache line) keeps a
 * table at M * 4 bytes, laid out as one flat u32 array that the agent writes through mmap
 * (BPF_F_MMAPABLE).
 *
 * Self-contained: lb_tc.c and the XDP program call lb4_select_backend_maglev() the same way. */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include "common.h"
#include "jhash.h"
#include "lb.h"

/* Load-time config (.rodata). lb_maglev_external: external-scope frontends select by Maglev
 * (config externalBackendSelection: maglev). lb_maglev_table_size: M, the size of every inner
 * table (a prime; config maglev.tableSize). */
const volatile __u8 lb_maglev_external = 0;
const volatile __u32 lb_maglev_table_size = 16381;

/* The same on every node (and in src/datapath/maglev.ts): part of the hash's definition. */
#define LB_MAGLEV_HASH_SEED 0x736c6d67 /* "slmg" */

#define LB_MAGLEV_SLOTS_PER_ELEM 16

/* One element of a table holds slots [16 * key, 16 * key + 15]; a table has
 * ceil(lb_maglev_table_size / 16) elements. A plain array type, not a struct: a struct named
 * only in the inner template reaches BTF as a forward declaration, which libbpf cannot size. */
typedef __u32 lb_maglev_slots_t[LB_MAGLEV_SLOTS_PER_ELEM];

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, LB_MAP_SIZE);
	__type(key, __u32); /* service_id */
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
		__uint(max_entries, 1); /* a template: real tables have ceil(M / 16) elements */
		__type(key, __u32);     /* slot / 16 */
		__type(value, lb_maglev_slots_t);
	});
} lb_maglev SEC(".maps");

/* The flow's hash: addresses and ports in host order, so it does not depend on the node's
 * byte order; the protocol perturbs the seed (a TCP and a UDP flow of one tuple may differ). */
static __always_inline __u32 lb4_maglev_hash(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
					     __u8 proto)
{
	return jhash_3words(bpf_ntohl(saddr), bpf_ntohl(daddr),
			    ((__u32)bpf_ntohs(sport) << 16) | bpf_ntohs(dport), LB_MAGLEV_HASH_SEED + proto);
}

/* Picks the backend of a new flow by Maglev: the client's ClientIP affinity entry while fresh
 * (as lb4_select_backend), else the table slot of the flow's hash. Falls back to
 * lb4_select_backend (random slot) when the service has no table yet or its slot names a backend
 * that is gone (the agent rewrites tables after it writes backends, and before that a flow is
 * better served at random than dropped). Returns the backend id, 0 when the service has no
 * usable backend. Addresses and ports in network byte order, as in the packet. */
static __always_inline __u32 lb4_select_backend_maglev(const struct lb_service *svc, __be32 saddr,
						       __be32 daddr, __be16 sport, __be16 dport, __u8 proto)
{
	struct lb4_affinity_key akey = { .service_id = svc->service_id, .client_address = saddr };
	__u32 service_id = svc->service_id;
	__u64 now = 0;
	__u32 *elem;
	__u32 slot, key, id;
	void *table;

	if (!svc->backend_count)
		return 0;
	if (svc->flags & LB_F_AFFINITY) {
		struct lb_affinity_value *a = bpf_map_lookup_elem(&lb4_affinity, &akey);

		now = bpf_ktime_get_ns();
		if (a && now - a->last_used_ns <= (__u64)svc->affinity_timeout * 1000000000ULL &&
		    lb4_lookup_backend(a->backend_id)) {
			a->last_used_ns = now;
			return a->backend_id;
		}
	}
	table = bpf_map_lookup_elem(&lb_maglev, &service_id);
	if (!table || !lb_maglev_table_size)
		return lb4_select_backend(svc, saddr);
	slot = lb4_maglev_hash(saddr, daddr, sport, dport, proto) % lb_maglev_table_size;
	key = slot / LB_MAGLEV_SLOTS_PER_ELEM;
	elem = bpf_map_lookup_elem(table, &key);
	if (!elem)
		return lb4_select_backend(svc, saddr);
	id = elem[slot % LB_MAGLEV_SLOTS_PER_ELEM];
	if (!id || !lb4_lookup_backend(id))
		return lb4_select_backend(svc, saddr);
	if (svc->flags & LB_F_AFFINITY) {
		struct lb_affinity_value fresh = { .last_used_ns = now, .backend_id = id };

		bpf_map_update_elem(&lb4_affinity, &akey, &fresh, BPF_ANY);
	}
	return id;
}

#endif
