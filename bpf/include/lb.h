/* Service load-balancing maps shared by every attach point (socket LB in sock_lb.c, per-packet LB
 * in lb_tc.c). The agent writes them; programs only read them (and the affinity map).
 *
 * Lookup chain, as in production balancers:
 *   frontend (address, port, proto, scope) -> lb_service {service_id, rev_nat_id, count, ...}
 *   (service_id, slot 1..count)            -> backend_id
 *   backend_id                             -> lb4_backend {address, port, ...}
 *   rev_nat_id                             -> the frontend, to translate replies back
 *
 * IPv4 maps carry a "4" in their names; IPv6 gets its own "6" maps with the same value layouts
 * (lb_service, slots, affinity values) so nothing is renumbered when it lands.
 *
 * Every struct has a BTF-checked codec in src/datapath/lb.ts. Explicit padding everywhere. */
#ifndef SLUICE_LB_H
#define SLUICE_LB_H

#include "common.h"

/* lb4_key.scope: a service port has an internal frontend (its ClusterIP, for traffic from the
 * cluster, subject to internalTrafficPolicy) and external ones (NodePort, LoadBalancer address,
 * externalIPs; subject to externalTrafficPolicy). Each scope has its own backend set. */
enum lb_scope {
	LB_SCOPE_EXTERNAL = 0,
	LB_SCOPE_INTERNAL = 1,
};

/* lb_service.flags */
enum lb_service_flags {
	LB_F_CLUSTER_IP = 1 << 0,
	LB_F_NODEPORT = 1 << 1,
	LB_F_EXTERNAL_IP = 1 << 2,
	LB_F_LOADBALANCER = 1 << 3,
	LB_F_AFFINITY = 1 << 4,  /* sessionAffinity ClientIP: affinity_timeout is set */
	LB_F_LOCAL_ONLY = 1 << 5, /* traffic policy Local: backends are this node's only; none -> drop */
};

/* lb4_backend.flags */
enum lb_backend_flags {
	LB_BACKEND_LOCAL = 1 << 0,       /* the endpoint runs on this node */
	LB_BACKEND_TERMINATING = 1 << 1, /* serving but terminating (used only when none is ready) */
};

struct lb4_key {
	__be32 address;
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope; /* enum lb_scope */
};

struct lb_service {
	__u32 service_id;   /* selects the backend slots */
	__u32 rev_nat_id;   /* this frontend, for reverse translation */
	__u16 backend_count; /* slots 1..backend_count are valid; 0: no usable endpoint */
	__u16 flags;        /* enum lb_service_flags */
	__u32 affinity_timeout; /* seconds, with LB_F_AFFINITY */
};

struct lb_slot_key {
	__u32 service_id;
	__u32 slot; /* 1..backend_count */
};

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;        /* enum lb_backend_flags */
	__be32 node_address; /* the node the endpoint runs on (0 when unknown) */
	__u32 pad;
};

struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* ClientIP affinity remembers a client per service. Per-packet LB knows the client by its
 * address; socket LB runs before the kernel picks a source address, so it knows the client by
 * its network namespace (one per pod) instead: netns_cookie is 0 for per-packet entries. */
struct lb4_affinity_key {
	__u64 netns_cookie;
	__u32 service_id;
	__be32 client_address;
};

struct lb_affinity_value {
	__u64 last_used_ns;
	__u32 backend_id;
	__u32 pad;
};

#ifndef LB_MAP_SIZE
#define LB_MAP_SIZE 65536
#endif

/* Pinned by name under the node's pin root, so sock_lb.c and lb_tc.c (separate objects) share
 * one copy, and a restarted agent adopts them. Sizes are overridden from the agent's config. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAP_SIZE);
	__type(key, struct lb4_key);
	__type(value, struct lb_service);
} lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAP_SIZE * 4);
	__type(key, struct lb_slot_key);
	__type(value, __u32);
} lb_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAP_SIZE * 4);
	__type(key, __u32);
	__type(value, struct lb4_backend);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAP_SIZE);
	__type(key, __u32);
	__type(value, struct lb4_reverse_nat);
} lb4_reverse_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_MAP_SIZE * 4);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb_affinity_value);
} lb4_affinity SEC(".maps");

static __always_inline struct lb_service *lb4_lookup_service(__be32 address, __be16 port, __u8 proto, __u8 scope)
{
	struct lb4_key key = { .address = address, .dport = port, .proto = proto, .scope = scope };

	return bpf_map_lookup_elem(&lb4_services, &key);
}

static __always_inline struct lb4_backend *lb4_lookup_backend(__u32 backend_id)
{
	return bpf_map_lookup_elem(&lb4_backends, &backend_id);
}

/* Picks a backend: the client's affinity entry while fresh, else a random slot. The client is
 * (netns_cookie, address): see lb4_affinity_key. Returns the backend id, 0 when the service has
 * no usable backend. */
static __always_inline __u32 lb4_select_backend_for(const struct lb_service *svc,
						    __u64 netns_cookie, __be32 client)
{
	struct lb4_affinity_key akey = {
		.netns_cookie = netns_cookie,
		.service_id = svc->service_id,
		.client_address = client,
	};
	struct lb_slot_key skey = { .service_id = svc->service_id };
	__u32 *backend_id;
	__u64 now = 0;

	if (!svc->backend_count)
		return 0;
	if (svc->flags & LB_F_AFFINITY) {
		struct lb_affinity_value *a;

		/* Only affinity needs the clock: a helper call (~40 ns) a new flow need not pay. */
		now = bpf_ktime_get_ns();
		a = bpf_map_lookup_elem(&lb4_affinity, &akey);

		if (a && now - a->last_used_ns <= (__u64)svc->affinity_timeout * 1000000000ULL &&
		    lb4_lookup_backend(a->backend_id)) {
			a->last_used_ns = now;
			return a->backend_id;
		}
	}
	skey.slot = (bpf_get_prandom_u32() % svc->backend_count) + 1;
	backend_id = bpf_map_lookup_elem(&lb_slots, &skey);
	if (!backend_id)
		return 0;
	if (svc->flags & LB_F_AFFINITY) {
		struct lb_affinity_value fresh = { .last_used_ns = now, .backend_id = *backend_id };

		bpf_map_update_elem(&lb4_affinity, &akey, &fresh, BPF_ANY);
	}
	return *backend_id;
}

/* Per-packet selection: the client is its source address. */
static __always_inline __u32 lb4_select_backend(const struct lb_service *svc, __be32 client)
{
	return lb4_select_backend_for(svc, 0, client);
}

#endif
