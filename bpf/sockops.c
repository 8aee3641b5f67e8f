// SPDX-License-Identifier: GPL-2.0
/* Socket acceleration for the pods of one node (bpf/include/sockmap.h has the maps):
 *
 *   sock_ops  (cgroup of the node)  an established TCP socket of a pod the agent listed gets its
 *             TCP tuning (congestion control, initial window) and, if the pod is accelerated,
 *             goes into the sockhash; its record is dropped when it closes (the kernel itself
 *             removes a closing socket from the sockhash).
 *   sk_msg    (on the sockhash)     a send whose peer socket is in the sockhash too (both ends
 *             on this node, both accelerated) is put straight into the peer's receive queue;
 *             anything else goes down the stack as usual.
 *
 * Pod to ClusterIP works the same: socket LB (sock_lb.c) rewrote the destination at connect(),
 * so the socket's 4-tuple already names the backend pod.
 *
 * Ordering. A redirected message lands in the peer's psock queue, which the peer reads before
 * its TCP receive queue. So one direction of a connection may switch from redirect to the stack
 * (the peer left the map: what was redirected is read first, then the stack's bytes), never from
 * the stack to redirect (the redirected bytes would overtake the stack's). A socket that has
 * sent anything through the stack is therefore never redirected again.
 *
 * Backpressure. A redirect applies no receive window: a sender faster than its reader piles
 * bytes up on the peer, charged to the peer's socket memory, until the kernel refuses a charge
 * and the sender's send() fails with ENOMEM. So before redirecting, sk_msg looks at how much
 * the peer holds unread; past a bound it sends through the stack instead, whose flow control
 * makes the sender wait, and by the rule above that connection direction stays there. */
#include "common.h"
#include <bpf/bpf_core_read.h>
#include "sockmap.h"

#define AF_INET 2
#define AF_INET6 10

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Load-time config. A peer socket holding more than this many unread bytes makes its senders
 * fall back to the stack whatever the kernel's TCP memory (the loader may lower it). */
const volatile __u32 backlog_max = 1U << 30;

/* Load-time config: the keepalive an accelerated socket with a local peer gets (see
 * sockmap_probe_peer): first probe after this many seconds without a segment from the peer,
 * then one every peer_probe_interval_s; a peer that answers none of peer_probe_count probes is
 * given up (ETIMEDOUT), as any TCP keepalive would. */
const volatile __u32 peer_probe_idle_s = 10;
const volatile __u32 peer_probe_interval_s = 5;
const volatile __u32 peer_probe_count = 127; /* the kernel's maximum (MAX_TCP_KEEPCNT) */

/* An IPv4 connection: an AF_INET socket, or an AF_INET6 one whose both ends are v4-mapped
 * (::ffff:a.b.c.d: a dual-stack listener's accepted sockets, iperf3's and many servers'). Its
 * local_ip4/remote_ip4 hold the IPv4 addresses either way, so both ends of a connection get
 * the same key whatever family each side used. */
#define SOCKMAP_V4_MAPPED(ctx, side)                                                       \
	((ctx)->side##_ip6[0] == 0 && (ctx)->side##_ip6[1] == 0 &&                         \
	 (ctx)->side##_ip6[2] == bpf_htonl(0xffff))
/* A macro, not a function: the verifier wants every ctx field read at a constant offset from
 * the ctx pointer itself. */
#define SOCKMAP_IS_V4(ctx)                                                                 \
	((ctx)->family == AF_INET ||                                                       \
	 ((ctx)->family == AF_INET6 && SOCKMAP_V4_MAPPED(ctx, local) &&                      \
	  SOCKMAP_V4_MAPPED(ctx, remote)))

static __always_inline void sockmap_count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&sockmap_stats, &stat);

	if (v)
		*v += n;
}

/* sock_ops and sk_msg hand the remote port as a __be16 in the upper half of a __u32 on
 * little-endian machines (the kernel shifts it there), the local port in host order. */
static __always_inline __be16 sockmap_remote_port(__u32 remote_port)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__be16)(remote_port >> 16);
#else
	return (__be16)remote_port;
#endif
}

/* ---- sock_ops ---------------------------------------------------------------------------- */

/* The tuning for this connection: the pod's entry for the server port, else for every port. */
static __always_inline struct sockmap_tuning *sockmap_find_tuning(__be32 address, __be16 server_port)
{
	struct sockmap_tuning_key key = { .address = address, .port = server_port };
	struct sockmap_tuning *t = bpf_map_lookup_elem(&sockmap_tuning, &key);

	if (t)
		return t;
	key.port = 0;
	return bpf_map_lookup_elem(&sockmap_tuning, &key);
}

/* Applies the per-socket settings; returns the SOCKMAP_CONN_* flags it earned. The sysctl-only
 * settings (fast open, slow start after idle) are the agent's; they are only recorded. */
static __always_inline __u32 sockmap_tune(struct bpf_sock_ops *ctx, struct sockmap_tuning *t,
					  struct sockmap_conn *conn)
{
	__u32 flags = SOCKMAP_CONN_TUNED;
	char congestion[TCP_CA_NAME_MAX] = {};
	int iw;

	if (t->flags & SOCKMAP_TUNE_CONGESTION) {
		__builtin_memcpy(congestion, t->congestion, sizeof(congestion));
		congestion[TCP_CA_NAME_MAX - 1] = 0;
		if (bpf_setsockopt(ctx, SOL_TCP, TCP_CONGESTION, congestion, sizeof(congestion)))
			flags |= SOCKMAP_CONN_TUNE_FAILED;
	}
	/* Only before the first data segment: at ESTABLISHED nothing has been sent yet. */
	if ((t->flags & SOCKMAP_TUNE_INITIAL_CWND) && t->initial_cwnd) {
		iw = (int)t->initial_cwnd;
		if (bpf_setsockopt(ctx, SOL_TCP, TCP_BPF_IW, &iw, sizeof(iw)))
			flags |= SOCKMAP_CONN_TUNE_FAILED;
	}
	conn->tuning = t->flags;
	return flags;
}

/* A reset from the peer can be lost, so an accelerated socket probes a local peer it hears
 * nothing from (TCP keepalive).
 *
 * Why. Redirected bytes wait on the receiver's psock and are charged to its sk_rmem_alloc
 * (6.13+: "tcp_bpf: Add sk_rmem_alloc related logic for tcp_bpf ingress redirection") with no
 * receive window to bound them. A segment that arrives while the receiving socket is owned by
 * its user (inside recv() or send(), e.g. draining that backlog) goes to the socket backlog,
 * and tcp_add_backlog() drops it when sk_backlog.len + sk_rmem_alloc is over
 * 2 * sk_rcvbuf + sk_sndbuf / 2 + 64 KiB (about 360 KB for a socket that never autotuned:
 * nothing does for redirected bytes). Data, FIN and ACKs are retransmitted, an RST is not: a
 * peer that aborts (SO_LINGER 0, close with unread data, a killed process) while this socket
 * is that far behind is never noticed, and a socket that only waits to read hangs for good
 * (seen in the lab: sk_drops 1, kfree_skb reason SOCKET_BACKLOG in tcp_v4_rcv, the server read
 * every byte sent before the reset and then waited). The aborted peer has left the sockhash,
 * and a probe to it gets a fresh RST from its kernel, which this socket (by then idle) takes.
 * Over the stack this does not happen: the window keeps sk_rmem_alloc within sk_rcvbuf.
 *
 * Only when the peer is a local accelerated pod (remote peers behave as over the stack), and
 * only when the application did not set SO_KEEPALIVE itself (a listener's setting is inherited
 * by its accepted sockets; an application may still change it afterwards). Redirected bytes
 * move no TCP timestamps, so every such connection sends one probe and gets one ACK through
 * the stack per peer_probe_idle_s; with peer_probe_count probes a live peer is never given up
 * (it would have to miss all of them, peer_probe_count * peer_probe_interval_s seconds). */
static __always_inline void sockmap_probe_peer(struct bpf_sock_ops *ctx)
{
	struct sockmap_pod_key peer_key = { .address = ctx->remote_ip4 };
	struct sockmap_pod *peer = bpf_map_lookup_elem(&sockmap_pods, &peer_key);
	int on = 0, v;

	if (!peer || !(peer->flags & SOCKMAP_POD_ACCELERATE) || !peer_probe_idle_s)
		return;
	if (bpf_getsockopt(ctx, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) || on)
		return;
	v = (int)peer_probe_idle_s;
	bpf_setsockopt(ctx, SOL_TCP, TCP_KEEPIDLE, &v, sizeof(v));
	v = (int)peer_probe_interval_s;
	bpf_setsockopt(ctx, SOL_TCP, TCP_KEEPINTVL, &v, sizeof(v));
	v = (int)peer_probe_count;
	bpf_setsockopt(ctx, SOL_TCP, TCP_KEEPCNT, &v, sizeof(v));
	on = 1;
	bpf_setsockopt(ctx, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}

/* Where the peer's sk_msg finds this socket to read its backlog (sockmap_peer_backlogged). */
static __always_inline void sockmap_remember(struct bpf_sock_ops *ctx, struct sockmap_key *key)
{
	struct sockmap_sock sock = {};
	struct bpf_sock *sk = ctx->sk;

	if (!sk)
		return;
	sock.sk = (__u64)sk;
	bpf_map_update_elem(&sockmap_socks, key, &sock, BPF_ANY);
}

static __always_inline void sockmap_established(struct bpf_sock_ops *ctx, bool passive)
{
	struct sockmap_pod_key pod_key = { .address = ctx->local_ip4 };
	struct sockmap_conn conn = {};
	struct sockmap_tuning *t;
	struct sockmap_pod *pod;
	__u64 netns, cookie;
	__be16 server_port;

	if (!SOCKMAP_IS_V4(ctx))
		return;
	pod = bpf_map_lookup_elem(&sockmap_pods, &pod_key);
	if (!pod)
		return;
	netns = bpf_get_netns_cookie(ctx);
	/* The first socket of the pod teaches its namespace; a socket bound to the same address in
	 * another namespace is not the pod's (a copied address, or loopback games). */
	if (!pod->netns_cookie)
		pod->netns_cookie = netns;
	else if (pod->netns_cookie != netns) {
		sockmap_count(SOCKMAP_STAT_NETNS_MISMATCH, 1);
		return;
	}

	conn.key.netns_cookie = netns;
	conn.key.local_address = ctx->local_ip4;
	conn.key.remote_address = ctx->remote_ip4;
	conn.key.local_port = bpf_htons((__u16)ctx->local_port);
	conn.key.remote_port = sockmap_remote_port(ctx->remote_port);
	if (passive)
		conn.flags |= SOCKMAP_CONN_PASSIVE;

	if (pod->flags & SOCKMAP_POD_TUNE) {
		server_port = passive ? conn.key.local_port : conn.key.remote_port;
		t = sockmap_find_tuning(ctx->local_ip4, server_port);
		if (t) {
			conn.flags |= sockmap_tune(ctx, t, &conn);
			sockmap_count(SOCKMAP_STAT_TUNED, 1);
			if (conn.flags & SOCKMAP_CONN_TUNE_FAILED)
				sockmap_count(SOCKMAP_STAT_TUNE_FAILED, 1);
		}
	}
	if (pod->flags & SOCKMAP_POD_ACCELERATE) {
		if (bpf_sock_hash_update(ctx, &sockmap_sockets, &conn.key, BPF_NOEXIST) == 0) {
			conn.flags |= SOCKMAP_CONN_ACCELERATED;
			sockmap_count(SOCKMAP_STAT_ADDED, 1);
			sockmap_remember(ctx, &conn.key);
			sockmap_probe_peer(ctx);
		} else {
			sockmap_count(SOCKMAP_STAT_ADD_FAILED, 1);
		}
	}
	if (!(conn.flags & (SOCKMAP_CONN_ACCELERATED | SOCKMAP_CONN_TUNED)))
		return;
	bpf_getsockopt(ctx, SOL_TCP, TCP_CONGESTION, conn.congestion, sizeof(conn.congestion));
	cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&sockmap_conns, &cookie, &conn, BPF_ANY);
	/* Ask for state changes, to drop the record when the connection closes. */
	bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void sockmap_state_changed(struct bpf_sock_ops *ctx)
{
	struct sockmap_conn *conn;
	__u64 cookie;

	/* args[1] is the new state. The sockhash entry goes with the socket (unhash); the record
	 * and the socket's address are ours to drop. */
	if (ctx->args[1] != BPF_TCP_CLOSE)
		return;
	cookie = bpf_get_socket_cookie(ctx);
	conn = bpf_map_lookup_elem(&sockmap_conns, &cookie);
	if (conn)
		bpf_map_delete_elem(&sockmap_socks, &conn->key);
	if (bpf_map_delete_elem(&sockmap_conns, &cookie) == 0)
		sockmap_count(SOCKMAP_STAT_CLOSED, 1);
}

SEC("sockops")
int sockmap_sockops(struct bpf_sock_ops *ctx)
{
	switch (ctx->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		sockmap_established(ctx, false);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		sockmap_established(ctx, true);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		sockmap_state_changed(ctx);
		break;
	}
	return 1;
}

/* ---- sk_msg ------------------------------------------------------------------------------ */

/* Whether this socket has sent any data through the TCP stack (sent, or queued and not sent
 * yet): from then on it must stay there (see the ordering note at the top). bytes_acked would
 * not do: the active side's SYN counts in it. */
static __always_inline bool sockmap_used_stack(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct tcp_sock *tp;

	if (!sk)
		return true;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return true;
	return tp->bytes_sent != 0 || tp->write_seq != tp->snd_nxt;
}

/* Whether the peer socket (by its key) holds so much unread that this send must go through
 * the stack. Its rmem_alloc counts its TCP receive queue and the redirected bytes queued on its
 * psock (the kernel adds those since "tcp_bpf: Add sk_rmem_alloc related logic for tcp_bpf
 * ingress redirection": 6.13 and the stable trees). bpf_tcp_ingress charges them with __sk_rmem_schedule(), which
 * fails only when the socket's memory cgroup refuses the charge or when the kernel is in TCP
 * memory pressure (tcp_mem: entered above tcp_mem[1], left below tcp_mem[0]) and the socket
 * holds more than its share. So:
 *   - up to sk_rcvbuf (what TCP itself would let the reader hold), always redirect;
 *   - once TCP memory is above tcp_mem[0] (pressure begins past tcp_mem[1]), fall back: the
 *     stack's window stops the sender before the kernel starts refusing charges;
 *   - past backlog_max, fall back anyway: one connection never grows without bound (a memory
 *     cgroup's limit is not read here; backlog_max bounds what one connection charges to it).
 * An unknown peer (added by an older program) is not checked. Returns why a send falls back
 * (0: it does not): the sockmap_stats index it is counted under. */
static __always_inline __u32 sockmap_peer_backlogged(struct sockmap_key *peer_key)
{
	struct sockmap_sock *peer = bpf_map_lookup_elem(&sockmap_socks, peer_key);
	struct proto *prot;
	struct sock *sk;
	long queued;

	if (!peer || !peer->sk)
		return 0;
	sk = bpf_rdonly_cast((void *)peer->sk, bpf_core_type_id_kernel(struct sock));
	queued = sk->sk_backlog.rmem_alloc.counter;
	if (queued <= sk->sk_rcvbuf)
		return 0;
	if (queued > backlog_max)
		return SOCKMAP_STAT_FELL_BACK;
	prot = sk->__sk_common.skc_prot;
	if (prot->memory_allocated->counter > prot->sysctl_mem[0])
		return SOCKMAP_STAT_FELL_BACK_TCP_MEM;
	return 0;
}

/* This socket sends through the stack from now on (sockmap_used_stack keeps it there):
 * flagged for `sluice sock list`, counted once under the reason. */
static __always_inline void sockmap_fell_back(struct sk_msg_md *msg, __u64 netns_cookie,
					      __u32 reason)
{
	struct sockmap_key key = {};
	struct sockmap_sock *self;

	key.netns_cookie = netns_cookie;
	key.local_address = msg->local_ip4;
	key.remote_address = msg->remote_ip4;
	key.local_port = bpf_htons((__u16)msg->local_port);
	key.remote_port = sockmap_remote_port(msg->remote_port);
	self = bpf_map_lookup_elem(&sockmap_socks, &key);
	if (self && !(self->flags & SOCKMAP_SOCK_FELL_BACK)) {
		self->flags |= SOCKMAP_SOCK_FELL_BACK;
		sockmap_count(reason, 1);
	}
}

SEC("sk_msg")
int sockmap_redirect(struct sk_msg_md *msg)
{
	struct sockmap_pod_key pod_key;
	struct sockmap_pod *self, *peer;
	struct sockmap_key key = {};
	__u64 size = msg->size;
	__u32 reason;

	if (!SOCKMAP_IS_V4(msg))
		goto pass;
	/* The agent withdrew acceleration from this pod: its sockets stay in the map until they
	 * close (removing them could drop what the peer has not read yet), but send via the stack. */
	pod_key.address = msg->local_ip4;
	self = bpf_map_lookup_elem(&sockmap_pods, &pod_key);
	if (!self || !(self->flags & SOCKMAP_POD_ACCELERATE))
		goto pass;
	pod_key.address = msg->remote_ip4;
	peer = bpf_map_lookup_elem(&sockmap_pods, &pod_key);
	if (!peer || !peer->netns_cookie || !(peer->flags & SOCKMAP_POD_ACCELERATE))
		goto pass;
	if (sockmap_used_stack(msg))
		goto pass;
	/* The peer's own key: its namespace, its side of the 4-tuple. */
	key.netns_cookie = peer->netns_cookie;
	key.local_address = msg->remote_ip4;
	key.remote_address = msg->local_ip4;
	key.local_port = sockmap_remote_port(msg->remote_port);
	key.remote_port = bpf_htons((__u16)msg->local_port);
	reason = sockmap_peer_backlogged(&key);
	if (reason) {
		sockmap_fell_back(msg, self->netns_cookie, reason);
		goto pass;
	}
	/* SK_DROP means no such peer socket: nothing was redirected, the stack sends it. */
	if (bpf_msg_redirect_hash(msg, &sockmap_sockets, &key, BPF_F_INGRESS) != SK_PASS)
		goto pass;
	sockmap_count(SOCKMAP_STAT_REDIRECTED, 1);
	sockmap_count(SOCKMAP_STAT_REDIRECTED_BYTES, size);
	return SK_PASS;
pass:
	sockmap_count(SOCKMAP_STAT_PASSED, 1);
	sockmap_count(SOCKMAP_STAT_PASSED_BYTES, size);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
