// SPDX-License-Identifier: GPL-2.0
/* Socket-level load balancing for the pods of one node (attached to the node's cgroup): a
 * connect() or sendto() to a ClusterIP frontend is pointed at a backend before the kernel routes
 * anything, so east-west traffic needs no per-packet NAT and no conntrack. The application keeps
 * seeing the service address: recvmsg4 and getpeername4 translate the backend back.
 *
 *   connect4      TCP and connected UDP: translate once per connect(), remember it in the socket
 *   sendmsg4      unconnected UDP: translate every datagram, remember (socket, backend) -> frontend
 *   recvmsg4      UDP: a datagram from a remembered backend shows the frontend as its source
 *   getpeername4  the peer of a translated socket is the frontend
 *
 * Each program is a short sequence of the stages below: lookup, select, remember, translate (and
 * recall, for the reverse direction). Only the frontend's internal scope (its ClusterIP) is
 * served here: traffic to NodePorts, LoadBalancer addresses and externalIPs is the per-packet
 * LB's (lb_tc.c). */
#include "common.h"
#include "lb.h"
#include "sock_lb.h"

/* ---- small accessors ------------------------------------------------------------------- */

/* user_port holds a __be16 in the low 16 bits of a __u32 field. */
static __always_inline __be16 sock4_port(const struct bpf_sock_addr *ctx)
{
	return (__be16)ctx->user_port;
}

/* Fails the syscall with err instead of the EPERM a plain SYS_REJECT gives. */
static __always_inline int sock4_reject(int err)
{
	bpf_set_retval(err);
	return SYS_REJECT;
}

/* ---- stage 1: lookup ------------------------------------------------------------------- */

/* The service whose internal frontend is the destination the application gave, or NULL. Fills
 * in the frontend as the application sees it, for the reverse direction. */
static __always_inline struct lb_service *sock4_lookup_service(const struct bpf_sock_addr *ctx,
								 struct sock_lb4_frontend *frontend)
{
	__u8 proto = ctx->protocol;
	struct lb_service *svc;

	/* Frontends exist for TCP and UDP only; anything else (UDP-Lite, ...) is not ours. */
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return NULL;
	frontend->address = ctx->user_ip4;
	frontend->port = sock4_port(ctx);
	svc = lb4_lookup_service(frontend->address, frontend->port, proto, LB_SCOPE_INTERNAL);
	if (svc)
		frontend->rev_nat_id = svc->rev_nat_id;
	return svc;
}

/* ---- stage 2: select ------------------------------------------------------------------- */

/* The client of the ClientIP affinity key: the pod, known by its network namespace (a socket
 * is usually unbound when connect() or sendto() runs: the kernel picks the source address after
 * this hook), plus the bound source address when the application bound one. So each pod sticks
 * to its own backend, as Cilium's socket LB keys it. */
static __always_inline __be32 sock4_affinity_client(const struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	return sk ? sk->src_ip4 : 0;
}

/* A slot chosen by the socket, not by the datagram: without it, an unconnected UDP socket's
 * datagrams to one service would scatter over all backends, where kube-proxy's conntrack keeps
 * such a flow (same socket, same service) on one backend. The cookie is unique per socket and
 * stable for its life (Cilium selects the same way). Cookies are handed out in sequence, so
 * they are mixed first (Fibonacci hashing: multiply by 2^64/phi, keep the high bits) so that
 * sockets created in a regular pattern do not all land on the same slots. */
static __always_inline __u32 sock4_socket_slot(struct bpf_sock_addr *ctx, __u16 count)
{
	__u64 mixed = bpf_get_socket_cookie(ctx) * 0x9E3779B97F4A7C15ULL;

	return (__u32)(mixed >> 32) % count + 1;
}

/* The backend for this connect() or datagram; NULL when the service's slots or backends are
 * missing (the agent writes backends and slots before the service points at them, so this is
 * a map that was changed under us). The caller has checked backend_count != 0. */
static __always_inline struct lb4_backend *sock4_select_backend(struct bpf_sock_addr *ctx,
								const struct lb_service *svc,
								bool per_socket)
{
	struct lb_slot_key slot = { .service_id = svc->service_id };
	__u32 backend_id;
	__u32 *id;

	/* ClientIP affinity decides before any per-socket choice: it already sticks. */
	if (!per_socket || (svc->flags & LB_F_AFFINITY)) {
		backend_id = lb4_select_backend_for(svc, bpf_get_netns_cookie(ctx),
						    sock4_affinity_client(ctx));
	} else {
		slot.slot = sock4_socket_slot(ctx, svc->backend_count);
		id = bpf_map_lookup_elem(&lb_slots, &slot);
		backend_id = id ? *id : 0;
	}
	if (!backend_id)
		return NULL;
	return lb4_lookup_backend(backend_id);
}

/* ---- stage 3: remember ----------------------------------------------------------------- */

/* Records in the socket itself where connect() really pointed it. False when the kernel could
 * not allocate the record. */
static __always_inline bool sock4_remember_conn(struct bpf_sock_addr *ctx,
						const struct sock_lb4_frontend *frontend,
						const struct lb4_backend *backend)
{
	struct sock_lb4_conn *conn;

	conn = bpf_sk_storage_get(&sock_lb4_conns, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!conn)
		return false;
	conn->frontend_address = frontend->address;
	conn->frontend_port = frontend->port;
	conn->backend_address = backend->address;
	conn->backend_port = backend->port;
	conn->rev_nat_id = frontend->rev_nat_id;
	return true;
}

/* A connected UDP socket can connect() again, to an address that is not a service: a record
 * from its previous connect() must not reverse-translate its new peer. */
static __always_inline void sock4_forget_conn(struct bpf_sock_addr *ctx)
{
	bpf_sk_storage_delete(&sock_lb4_conns, ctx->sk);
}

/* Records that replies from this backend to this socket come from the frontend. Written only
 * when new or changed: most datagrams of a socket repeat the previous one's entry, and a
 * lookup is cheaper than an update. False when the entry could not be written. */
static __always_inline bool sock4_remember_reply(struct bpf_sock_addr *ctx,
						 const struct sock_lb4_frontend *frontend,
						 const struct lb4_backend *backend)
{
	struct sock_lb4_rev_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.backend_address = backend->address,
		.backend_port = backend->port,
	};
	struct sock_lb4_frontend *known = bpf_map_lookup_elem(&sock_lb4_rev, &key);

	if (known && known->address == frontend->address && known->port == frontend->port &&
	    known->rev_nat_id == frontend->rev_nat_id)
		return true;
	return bpf_map_update_elem(&sock_lb4_rev, &key, frontend, BPF_ANY) == 0;
}

/* ---- stage 4: translate ---------------------------------------------------------------- */

static __always_inline void sock4_translate(struct bpf_sock_addr *ctx, const struct lb4_backend *backend)
{
	ctx->user_ip4 = backend->address;
	ctx->user_port = (__u32)backend->port;
}

/* ---- reverse: recall ------------------------------------------------------------------- */

/* The frontend through which this socket reached the peer address/port, if it did. */
static __always_inline bool sock4_recall(struct bpf_sock_addr *ctx, __be32 address, __be16 port,
					 struct sock_lb4_frontend *frontend)
{
	struct sock_lb4_rev_key key = { .backend_address = address, .backend_port = port };
	struct sock_lb4_frontend *rev;
	struct sock_lb4_conn *conn;

	conn = bpf_sk_storage_get(&sock_lb4_conns, ctx->sk, NULL, 0);
	if (conn && conn->backend_address == address && conn->backend_port == port) {
		frontend->address = conn->frontend_address;
		frontend->port = conn->frontend_port;
		frontend->rev_nat_id = conn->rev_nat_id;
		return true;
	}
	/* Only unconnected UDP writes per-datagram entries. */
	if (ctx->protocol != IPPROTO_UDP)
		return false;
	key.cookie = bpf_get_socket_cookie(ctx);
	rev = bpf_map_lookup_elem(&sock_lb4_rev, &key);
	if (!rev)
		return false;
	*frontend = *rev;
	return true;
}

/* A remembered frontend is reported only while the agent still serves it: once the service is
 * deleted (its lb4_reverse_nat entry with it) or its id reused for another frontend, the
 * application sees the true peer instead of an address that no longer means anything. */
static __always_inline bool sock4_frontend_current(const struct sock_lb4_frontend *frontend)
{
	__u32 id = frontend->rev_nat_id;
	struct lb4_reverse_nat *rev_nat = bpf_map_lookup_elem(&lb4_reverse_nat, &id);

	return rev_nat && rev_nat->address == frontend->address && rev_nat->port == frontend->port;
}

/* Rewrites the peer address in ctx (a datagram's source, or getpeername()'s answer) from a
 * backend to the frontend this socket used to reach it. */
static __always_inline void sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct sock_lb4_frontend frontend = {};

	if (!sock4_recall(ctx, ctx->user_ip4, sock4_port(ctx), &frontend))
		return;
	if (!sock4_frontend_current(&frontend))
		return;
	ctx->user_ip4 = frontend.address;
	ctx->user_port = (__u32)frontend.port;
}

/* ---- programs -------------------------------------------------------------------------- */

SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	struct sock_lb4_frontend frontend = {};
	struct lb4_backend *backend;
	struct lb_service *svc;

	svc = sock4_lookup_service(ctx, &frontend);
	if (!svc) {
		sock4_forget_conn(ctx);
		return SYS_PROCEED;
	}
	/* No usable endpoint: fail now, as kube-proxy's REJECT rule does, never a timeout. This
	 * includes internalTrafficPolicy Local without an endpoint on this node (LB_F_LOCAL_ONLY),
	 * where kube-proxy DROPs instead: a connect() cannot be made to time out from here, and
	 * failing at once is what the issue asks for (and what Cilium does). */
	if (!svc->backend_count)
		return sock4_reject(-ECONNREFUSED);
	backend = sock4_select_backend(ctx, svc, false);
	if (!backend) {
		/* Maps changed under us: leave the address alone; the per-packet LB sees it next. */
		sock4_forget_conn(ctx);
		return SYS_PROCEED;
	}
	/* A translation we could not undo would show the backend to the application. */
	if (!sock4_remember_conn(ctx, &frontend, backend))
		return sock4_reject(-ENOMEM);
	sock4_translate(ctx, backend);
	return SYS_PROCEED;
}

/* Runs only for datagrams that carry a destination (sendto/sendmsg with an address); a
 * connected socket's send() went through connect4 already. */
SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	struct sock_lb4_frontend frontend = {};
	struct lb4_backend *backend;
	struct lb_service *svc;

	svc = sock4_lookup_service(ctx, &frontend);
	if (!svc)
		return SYS_PROCEED;
	/* sendto() fails with ECONNREFUSED, like connect(): Cilium rejects the datagram the same
	 * way (bpf_set_retval + SYS_REJECT), rather than dropping it silently. */
	if (!svc->backend_count)
		return sock4_reject(-ECONNREFUSED);
	backend = sock4_select_backend(ctx, svc, true);
	if (!backend)
		return SYS_PROCEED;
	/* Replies from a backend we could not remember would be discarded by most applications,
	 * which check the source; fail the send instead (Cilium does too). */
	if (!sock4_remember_reply(ctx, &frontend, backend))
		return sock4_reject(-ENOMEM);
	sock4_translate(ctx, backend);
	return SYS_PROCEED;
}

/* recvmsg4 and getpeername4 cannot fail the syscall (the verifier accepts only 1). */
SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_reverse(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock4_getpeername(struct bpf_sock_addr *ctx)
{
	sock4_reverse(ctx);
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "GPL";
