/* A per-CPU cache of next hops for the XDP fast path: the FIB lookup is a third of what an
 * established flow costs at XDP (docs/xdp.md), and a node sends its flows to few next hops.
 *
 * Keyed by what the lookup depends on (addresses, TOS, input interface); an entry lives one
 * second, so a route or neighbour change is followed within a second. Only successful lookups
 * are cached, with the largest IP length they were checked for: a longer packet asks the FIB
 * again (its MTU check). TC does not use it: it redirects through the kernel, which resolves
 * neighbours itself. Every struct has a BTF-checked codec in src/datapath/lb-xdp.ts. */
#ifndef SLUICE_FIB_CACHE_H
#define SLUICE_FIB_CACHE_H

#include "common.h"
#include "ctx.h"
#include "fib.h"

#define FIB4_CACHE_SIZE 4096
#define FIB4_CACHE_TTL_NS 1000000000ULL

struct fib4_cache_key {
	__be32 saddr;
	__be32 daddr;
	__u32 ifindex; /* the input interface */
	__u8 tos;
	__u8 pad[3];
};

struct fib4_cache_entry {
	__u64 expires_ns;
	__u32 ifindex;   /* the output interface */
	__u16 fits_len;  /* the largest IP length the FIB's MTU check passed */
	__u16 pad;
	__u8 dmac[6];
	__u8 smac[6];
	__u8 pad2[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, FIB4_CACHE_SIZE);
	__type(key, struct fib4_cache_key);
	__type(value, struct fib4_cache_entry);
} fib4_cache SEC(".maps");

/* fib4_lookup through the cache: on a hit only fib->ifindex, smac and dmac are filled, which is
 * all a successful lookup's user needs. Returns the FIB's result code. */
static __always_inline long fib4_lookup_cached(struct __ctx_buff *ctx, const struct ipv4_packet *p, __be32 saddr,
					       __be32 daddr, __u16 tot_len, struct bpf_fib_lookup *fib, __u64 now)
{
	struct fib4_cache_key key = {
		.saddr = saddr,
		.daddr = daddr,
		.ifindex = ctx_ifindex(ctx),
		.tos = p->tos,
	};
	struct fib4_cache_entry *e = bpf_map_lookup_elem(&fib4_cache, &key);
	struct fib4_cache_entry fresh = {};
	long rc;

	if (e && e->expires_ns > now && tot_len <= e->fits_len) {
		fib->ifindex = e->ifindex;
		__builtin_memcpy(fib->dmac, e->dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, e->smac, ETH_ALEN);
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	rc = fib4_lookup(ctx, p, saddr, daddr, tot_len, fib);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	fresh.expires_ns = now + FIB4_CACHE_TTL_NS;
	fresh.ifindex = fib->ifindex;
	fresh.fits_len = tot_len;
	/* A longer packet that passed while the entry lives raises the bar (same route, same MTU). */
	if (e && e->expires_ns > now && e->ifindex == fib->ifindex && e->fits_len > tot_len)
		fresh.fits_len = e->fits_len;
	__builtin_memcpy(fresh.dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(fresh.smac, fib->smac, ETH_ALEN);
	bpf_map_update_elem(&fib4_cache, &key, &fresh, BPF_ANY);
	return rc;
}

#endif
