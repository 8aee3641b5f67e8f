/* The per-packet load balancer's stages that do not depend on the attach point, shared by TC
 * (lb_tc.c) and XDP (lb_xdp.c): conntrack lookup, service lookup, backend selection, the NAT
 * plan and conntrack creation. Each program adds its own parse, translate and deliver stages
 * around them; see lb_tc.c for the whole pipeline.
 *
 * Each stage sets the verdict (verdicts.h) when it ends the pipeline. */
#ifndef SLUICE_LB_PIPELINE_H
#define SLUICE_LB_PIPELINE_H

#include "common.h"
#include "ctx.h"
#include "parse.h"
#include "verdicts.h"
#include "lb.h"
#include "maglev.h"
#include "conntrack.h"
#include "nat.h"
#include "dsr.h"

/* Load-time config (.rodata), besides node_ipv4 and the SNAT ports (nat.h) and the conntrack
 * timeouts (conntrack.h). cluster_cidr: the pods' addresses. A ClusterIP flow from outside it
 * to a backend on another node is SNATed (kube-proxy's --cluster-cidr masquerade rule), so the
 * reply comes back here; length 0 counts every client as the cluster's. */
const volatile __be32 cluster_cidr_ipv4 = 0;
const volatile __u8 cluster_cidr_len = 0;

/* A stage returns STAGE_NEXT to go on, or the action that ends the pipeline (CTX_PASS,
 * CTX_DROP, or one only its program knows); STAGE_NO_BACKEND hands a service without a usable
 * endpoint to the program, which rejects it (TC) or leaves it to TC (XDP). */
#define STAGE_NEXT -1
#define STAGE_NO_BACKEND -2

enum lb_hook {
	LB_HOOK_INGRESS = 0,
	LB_HOOK_EGRESS = 1,
};

/* What the stages know about the packet in hand. */
struct lb_ctx {
	struct ipv4_packet pkt;
	struct ct4_key key;          /* the packet's tuple, FORWARD */
	struct ct4_entry *ct;        /* the flow's entry: a conntrack hit, or &fresh */
	__u8 dir;                    /* the direction the packet travels in (enum ct_dir) */
	__u8 hook;                   /* enum lb_hook */
	__u8 scope;                  /* the frontend's enum lb_scope, for a new flow */
	bool stale;                  /* a dead or finished FORWARD entry is being replaced */
	struct ct4_key stale_reply;  /* ... and the REPLY key it had */
	const struct lb_service *svc;
	struct lb4_backend *backend;
	struct ct4_entry fresh;      /* a new flow's entry, before and after it is written */
	__u64 now;
	__u32 verdict;
	bool dsr_ok;                 /* this program can send a new flow by DSR (dsr.h) */
};

/* Whether an address lies inside the cluster CIDR, which must be configured. */
static __always_inline bool lb4_in_cluster_cidr(__be32 addr)
{
	__u32 mask = cluster_cidr_len >= 32 ? ~0U : ~0U << (32 - cluster_cidr_len);

	return (bpf_ntohl(addr) & mask) == (bpf_ntohl(cluster_cidr_ipv4) & mask);
}

/* Whether a client is the cluster's: a pod, the node itself, or anyone when no cluster CIDR is
 * configured. */
static __always_inline bool lb4_from_cluster(__be32 addr)
{
	return !cluster_cidr_len || addr == node_ipv4 || lb4_in_cluster_cidr(addr);
}

/* Whether a destination is a pod's address: inside a configured cluster CIDR, and not the
 * node's. No frontend lies there (the control plane refuses a Service whose ClusterIP,
 * externalIP or LoadBalancer address does, validate.ts), so a packet to a pod opens no flow and
 * continues none as FORWARD: only a REPLY entry can match it (a pod's flow balanced here without
 * SNAT). Most packets TC sees on a node are its pods' own traffic: this spares each one a cold
 * conntrack bucket and two service lookups. */
static __always_inline bool lb4_to_pod(__be32 daddr)
{
	return cluster_cidr_len && daddr != node_ipv4 && lb4_in_cluster_cidr(daddr);
}

/* ---- Stage: conntrack lookup ----------------------------------------------------------- *
 * The packet as a FORWARD key (client -> frontend), then as a REPLY key (backend -> client or
 * SNAT address). A dead FORWARD entry, or a finished one that a new SYN reopens, is replaced by
 * a new flow; its REPLY key is kept so the new flow can retire it.
 *
 * A TCP SYN without ACK opens a connection and is never a reply (a backend answers a SYN with
 * SYN-ACK; simultaneous open does not happen with a listening server), so it is not looked up
 * as one: a new TCP flow then costs one conntrack lookup, not two. On a map holding many flows
 * that lookup is a cold hash bucket, ~140 ns of a new flow at XDP (docs/xdp.md). */
static __always_inline bool ct4_opens(__u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN;
}

static __always_inline void stage_ct_lookup(struct lb_ctx *c, bool to_pod)
{
	struct ct4_key *k = &c->key;
	struct ct4_entry *e;

	ct4_packet_key(&c->pkt, CT_DIR_FORWARD, k);
	e = to_pod ? NULL : bpf_map_lookup_elem(&ct4, k);
	if (e) {
		if (ct4_alive(e, c->now) && !ct4_reopens(e, k->proto, c->pkt.tcp_flags)) {
			c->ct = e;
			c->dir = CT_DIR_FORWARD;
		} else {
			c->stale = true;
			ct4_reply_key(e, k->proto, &c->stale_reply);
		}
		return;
	}
	if (ct4_opens(k->proto, c->pkt.tcp_flags))
		return;
	k->dir = CT_DIR_REPLY;
	e = bpf_map_lookup_elem(&ct4, k);
	k->dir = CT_DIR_FORWARD;
	if (e && ct4_alive(e, c->now)) {
		c->ct = e;
		c->dir = CT_DIR_REPLY;
	}
}

/* ---- Stage: service lookup ------------------------------------------------------------- */

static __always_inline int stage_service_lookup(struct lb_ctx *c)
{
	const struct ipv4_packet *p = &c->pkt;

	c->scope = LB_SCOPE_EXTERNAL;
	c->svc = lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_EXTERNAL);
	if (!c->svc) {
		c->scope = LB_SCOPE_INTERNAL;
		c->svc = lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_INTERNAL);
	}
	if (!c->svc) {
		c->verdict = VERDICT_PASS_NO_SERVICE;
		return CTX_PASS;
	}
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & TH_RST)) {
		c->verdict = VERDICT_PASS_TCP_RST;
		return CTX_PASS;
	}
	return STAGE_NEXT;
}

/* ---- Stage: backend select ------------------------------------------------------------- *
 * Random slot, or the client's affinity entry (lb4_select_backend, lb.h). */
static __always_inline int stage_backend_select(struct lb_ctx *c)
{
	const struct lb_service *svc = c->svc;
	__u32 id;

	if (!svc->backend_count)
		return STAGE_NO_BACKEND;
	if (lb_maglev_external && c->scope == LB_SCOPE_EXTERNAL)
		id = lb4_select_backend_maglev(svc, c->pkt.saddr, c->pkt.daddr, c->pkt.sport, c->pkt.dport,
					       c->pkt.proto);
	else
		id = lb4_select_backend(svc, c->pkt.saddr);
	c->backend = id ? lb4_lookup_backend(id) : NULL;
	if (!c->backend) {
		c->verdict = VERDICT_DROP_BACKEND_MISSING;
		return CTX_DROP;
	}
	c->fresh.backend_id = id;
	c->fresh.rev_nat_id = svc->rev_nat_id;
	return STAGE_NEXT;
}

/* ---- Stage: NAT plan ------------------------------------------------------------------- *
 * DNAT always. SNAT to the node address when the reply would otherwise not come back through
 * this node: an external-scope flow to a backend on another node (externalTrafficPolicy
 * Cluster), a ClusterIP flow from outside the cluster to another node, and hairpin (a pod
 * reaching itself through its service). Never for traffic policy Local: the client address is
 * kept. */
static __always_inline int stage_nat_plan(struct lb_ctx *c)
{
	const struct lb4_backend *be = c->backend;
	struct ct4_entry *e = &c->fresh;
	bool remote = !(be->flags & LB_BACKEND_LOCAL);
	bool snat = be->address == c->pkt.saddr;

	bool dsr = false;

	if (!(c->svc->flags & LB_F_LOCAL_ONLY) && remote) {
		/* DSR instead of SNAT for external flows, where the mode says so (dsr.h); never for
		 * this node or its cluster's pods as clients: a reply from the service address (this
		 * node's, for a NodePort) would reach them as a martian. */
		dsr = c->dsr_ok && !snat && c->scope == LB_SCOPE_EXTERNAL && dsr4_mode_for(c->pkt.proto) &&
		      c->pkt.saddr != node_ipv4 && !(cluster_cidr_len && lb4_from_cluster(c->pkt.saddr));
		snat |= !dsr && (c->scope == LB_SCOPE_EXTERNAL || !lb4_from_cluster(c->pkt.saddr));
	}

	e->client_addr = c->pkt.saddr;
	e->client_port = c->pkt.sport;
	e->frontend_addr = c->pkt.daddr;
	e->frontend_port = c->pkt.dport;
	e->backend_addr = be->address;
	e->backend_port = be->port;
	e->snat_addr = c->pkt.saddr;
	e->snat_port = c->pkt.sport;
	if (dsr)
		e->flags |= CT_F_DSR;
	if (snat) {
		if (!node_ipv4) {
			c->verdict = VERDICT_DROP_SNAT_NO_ADDRESS;
			return CTX_DROP;
		}
		e->snat_addr = node_ipv4;
		e->flags |= CT_F_SNAT;
	}
	return STAGE_NEXT;
}

/* ---- Stage: conntrack create ----------------------------------------------------------- *
 * The REPLY entry first: with SNAT, writing it claims the port. Without, the REPLY key is the
 * backend and the client's own address and port, and another live flow may hold it already: a
 * client keeps its ports unique per destination only, so it may reuse a port for another
 * frontend of the same backend (Linux's connect() does, e.g. right after the first connection
 * closed, whose entry lives on for the close timeout). Dropping the new flow would fail the
 * client's connection for as long as that entry lives; as netfilter does, the new flow gets
 * another source port instead (from the SNAT range, which local sockets do not use), keeping
 * the client's address. Then the FORWARD entry. */
static __always_inline bool ct4_key_equal(const struct ct4_key *a, const struct ct4_key *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport && a->dport == b->dport &&
	       a->proto == b->proto && a->dir == b->dir;
}

static __always_inline int stage_ct_create(struct lb_ctx *c)
{
	struct ct4_entry *e = &c->fresh;
	__u8 proto = c->pkt.proto;
	struct ct4_entry *old;
	struct ct4_key rkey;

	e->state = CT_STATE_NONE;
	if (proto == IPPROTO_TCP)
		e->state = (c->pkt.tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN ? CT_STATE_SYN_SENT
									   : CT_STATE_ESTABLISHED;
	e->created_ns = c->now;
	e->expires_ns = c->now + ct4_timeout_ns(proto, e->state);

	ct4_reply_key(e, proto, &rkey);
	if (e->flags & CT_F_DSR) {
		/* Replies leave the backend's node directly: no REPLY entry here. */
	} else if (e->flags & CT_F_SNAT) {
		if (nat4_snat_claim(e, proto, c->now)) {
			c->verdict = VERDICT_DROP_SNAT_EXHAUSTED;
			return CTX_DROP;
		}
		ct4_reply_key(e, proto, &rkey);
	} else {
		old = bpf_map_lookup_elem(&ct4, &rkey);
		if (old && ct4_alive(old, c->now) && !ct4_same_forward(old, e)) {
			e->flags |= CT_F_SNAT;
			if (nat4_snat_claim(e, proto, c->now)) {
				c->verdict = VERDICT_DROP_CT_CLASH;
				return CTX_DROP;
			}
			ct4_reply_key(e, proto, &rkey);
		} else if (bpf_map_update_elem(&ct4, &rkey, e, BPF_ANY)) {
			c->verdict = VERDICT_DROP_CT_CREATE;
			return CTX_DROP;
		}
	}
	if (bpf_map_update_elem(&ct4, &c->key, e, BPF_ANY)) {
		if (!(e->flags & CT_F_DSR))
			bpf_map_delete_elem(&ct4, &rkey);
		c->verdict = VERDICT_DROP_CT_CREATE;
		return CTX_DROP;
	}
	/* The replaced flow's REPLY entry, unless the new flow reuses its key. */
	if (c->stale && !ct4_key_equal(&c->stale_reply, &rkey)) {
		old = bpf_map_lookup_elem(&ct4, &c->stale_reply);
		if (old && ct4_same_forward(old, e))
			bpf_map_delete_elem(&ct4, &c->stale_reply);
	}
	c->ct = e;
	c->dir = CT_DIR_FORWARD;
	return STAGE_NEXT;
}

#endif
