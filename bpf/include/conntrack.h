/* Connection tracking for the per-packet load balancer: one LRU map, two entries per flow.
 *
 *   FORWARD  key = the client's packet as it arrives:  client:port -> frontend:port
 *   REPLY    key = the backend's reply as it arrives:  backend:port -> snat:port
 *            (snat = the node address and a port from the SNAT range when the flow is SNATed,
 *             else the client address and port)
 *
 * Both entries hold the same value: every address and port of the flow and the TCP state, so
 * either direction is translated with one lookup, and a removed backend keeps serving its
 * flows (make-before-break) because nothing else is read. State and lifetime are kept equal in
 * both: a state change writes both, and so does a refresh, which happens at most once a second
 * per flow (every half timeout, for timeouts under two seconds). An entry whose expires_ns has
 * passed is dead: the datapath ignores it, the LRU recycles it, and the agent's garbage
 * collection may delete it (and its peer).
 *
 * Timeouts are load-time config (.rodata, seconds), defaults as Cilium's.
 * Every struct has a BTF-checked codec in src/datapath/lb-tc.ts. */
#ifndef SLUICE_CONNTRACK_H
#define SLUICE_CONNTRACK_H

#include "common.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ULL

#ifndef CT4_MAP_SIZE
#define CT4_MAP_SIZE 262144 /* entries, two per flow; the agent's config overrides it */
#endif

const volatile __u32 ct_timeout_tcp_syn = 60;
const volatile __u32 ct_timeout_tcp_established = 21600;
const volatile __u32 ct_timeout_tcp_fin = 10;
const volatile __u32 ct_timeout_tcp_close = 10;
const volatile __u32 ct_timeout_udp = 60;

enum ct_dir {
	CT_DIR_FORWARD = 0,
	CT_DIR_REPLY = 1,
};

enum ct_state {
	CT_STATE_NONE = 0,        /* protocols without states (UDP) */
	CT_STATE_SYN_SENT = 1,    /* the client's SYN, no answer yet */
	CT_STATE_ESTABLISHED = 2, /* the backend answered */
	CT_STATE_FIN = 3,         /* one side sent FIN */
	CT_STATE_CLOSE = 4,       /* both sides sent FIN, or one sent RST */
};

enum ct_flags {
	CT_F_SNAT = 1 << 0,       /* the source was translated to snat_addr:snat_port */
	CT_F_SEEN_REPLY = 1 << 1, /* a packet came back from the backend */
	CT_F_FIN_FORWARD = 1 << 2,
	CT_F_FIN_REPLY = 1 << 3,
	CT_F_DSR = 1 << 4,        /* direct server return (dsr.h): one entry, no peer on this node */
};

struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum ct_dir */
	__u8 pad[2];
};

struct ct4_entry {
	__u64 expires_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 created_ns;
	__be32 client_addr;   /* the original source */
	__be32 frontend_addr; /* the original destination: the service frontend */
	__be32 backend_addr;  /* the destination after DNAT */
	__be32 snat_addr;     /* the source after SNAT; client_addr without SNAT */
	__be16 client_port;
	__be16 frontend_port;
	__be16 backend_port;
	__be16 snat_port;     /* client_port without SNAT */
	__u32 rev_nat_id;     /* the frontend's lb4_reverse_nat id, for tools */
	__u32 backend_id;
	__u8 state;           /* enum ct_state */
	__u8 flags;           /* enum ct_flags */
	__u8 pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT4_MAP_SIZE);
	__type(key, struct ct4_key);
	__type(value, struct ct4_entry);
} ct4 SEC(".maps");

static __always_inline bool ct4_alive(const struct ct4_entry *e, __u64 now)
{
	return e->expires_ns > now;
}

static __always_inline __u64 ct4_timeout_ns(__u8 proto, __u8 state)
{
	__u32 s;

	if (proto != IPPROTO_TCP)
		s = ct_timeout_udp;
	else if (state == CT_STATE_SYN_SENT)
		s = ct_timeout_tcp_syn;
	else if (state == CT_STATE_ESTABLISHED)
		s = ct_timeout_tcp_established;
	else if (state == CT_STATE_FIN)
		s = ct_timeout_tcp_fin;
	else
		s = ct_timeout_tcp_close;
	return (__u64)s * NSEC_PER_SEC;
}

/* The key of a packet as it arrives, looked up as direction dir: its own addresses and ports. */
static __always_inline void ct4_packet_key(const struct ipv4_packet *p, __u8 dir, struct ct4_key *k)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->dir = dir;
	k->pad[0] = k->pad[1] = 0;
}

static __always_inline void ct4_forward_key(const struct ct4_entry *e, __u8 proto, struct ct4_key *k)
{
	k->saddr = e->client_addr;
	k->daddr = e->frontend_addr;
	k->sport = e->client_port;
	k->dport = e->frontend_port;
	k->proto = proto;
	k->dir = CT_DIR_FORWARD;
	k->pad[0] = k->pad[1] = 0;
}

static __always_inline void ct4_reply_key(const struct ct4_entry *e, __u8 proto, struct ct4_key *k)
{
	k->saddr = e->backend_addr;
	k->daddr = e->snat_addr;
	k->sport = e->backend_port;
	k->dport = e->snat_port;
	k->proto = proto;
	k->dir = CT_DIR_REPLY;
	k->pad[0] = k->pad[1] = 0;
}

/* Whether two entries describe the same original connection (client -> frontend). */
static __always_inline bool ct4_same_forward(const struct ct4_entry *a, const struct ct4_entry *b)
{
	return a->client_addr == b->client_addr && a->client_port == b->client_port &&
	       a->frontend_addr == b->frontend_addr && a->frontend_port == b->frontend_port;
}

/* The TCP state after a packet with these flags, seen in direction dir. */
static __always_inline __u8 ct4_tcp_next(__u8 state, __u8 *flags, __u8 dir, __u8 tcp_flags)
{
	if (tcp_flags & TH_RST)
		return CT_STATE_CLOSE;
	if (tcp_flags & TH_FIN) {
		*flags |= dir == CT_DIR_FORWARD ? CT_F_FIN_FORWARD : CT_F_FIN_REPLY;
		if ((*flags & (CT_F_FIN_FORWARD | CT_F_FIN_REPLY)) == (CT_F_FIN_FORWARD | CT_F_FIN_REPLY))
			return CT_STATE_CLOSE;
		return state == CT_STATE_CLOSE ? CT_STATE_CLOSE : CT_STATE_FIN;
	}
	if (state == CT_STATE_SYN_SENT && dir == CT_DIR_REPLY)
		return CT_STATE_ESTABLISHED;
	return state;
}

/* Whether a packet reopens a finished flow: a client's new SYN on a closing TCP entry. The
 * client reused its port; the old entry must not route the new connection. */
static __always_inline bool ct4_reopens(const struct ct4_entry *e, __u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN &&
	       e->state >= CT_STATE_FIN;
}

/* How far a packet must push a flow's expiry before the entries are written again: a second,
 * or half the timeout when that is shorter. With a flat second, a flow under a timeout of one
 * second or less was never refreshed (its expiry can only grow by a second once it has passed)
 * and died a timeout after its first packet however busy it was: a new backend, a new SNAT
 * port, its replies lost. */
static __always_inline __u64 ct4_refresh_step(__u64 timeout)
{
	return timeout < 2 * NSEC_PER_SEC ? timeout / 2 : NSEC_PER_SEC;
}

/* Accounts a packet of a live flow seen in direction dir: TCP state, flags, lifetime. Writes
 * only on a change of state or when the lifetime grows by ct4_refresh_step or more, and then
 * writes the peer entry too (recreating it if the LRU recycled it). */
static __always_inline void ct4_update(struct ct4_entry *e, __u8 proto, __u8 dir, __u8 tcp_flags, __u64 now)
{
	__u8 flags = e->flags;
	__u8 state = e->state;
	struct ct4_entry *peer;
	struct ct4_key pkey;
	__u64 expires, timeout;

	if (dir == CT_DIR_REPLY)
		flags |= CT_F_SEEN_REPLY;
	if (proto == IPPROTO_TCP)
		state = ct4_tcp_next(state, &flags, dir, tcp_flags);
	timeout = ct4_timeout_ns(proto, state);
	expires = now + timeout;
	if (state == e->state && flags == e->flags && expires < e->expires_ns + ct4_refresh_step(timeout))
		return;
	e->state = state;
	e->flags = flags;
	e->expires_ns = expires;
	if (e->flags & CT_F_DSR)
		return;
	if (dir == CT_DIR_FORWARD)
		ct4_reply_key(e, proto, &pkey);
	else
		ct4_forward_key(e, proto, &pkey);
	peer = bpf_map_lookup_elem(&ct4, &pkey);
	if (peer && ct4_same_forward(peer, e)) {
		peer->state = state;
		peer->flags = flags;
		peer->expires_ns = expires;
	} else if (!peer) {
		bpf_map_update_elem(&ct4, &pkey, e, BPF_ANY);
	}
}

#endif
