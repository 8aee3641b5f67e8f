// SPDX-License-Identifier: GPL-2.0
/* Per-packet service load balancing at TC: the kube-proxy replacement for traffic that enters
 * the node (NodePort on the node address, LoadBalancer addresses, externalIPs: scope EXTERNAL)
 * and for ClusterIP traffic that reaches TC because it bypassed the socket hooks (scope
 * INTERNAL).
 *
 * Attach lb_tc_ingress on the node's uplink ingress (and on the host side of pod veths, for
 * traffic from local pods), lb_tc_egress on the uplink egress. The same pipeline runs at both:
 *
 *   parse -> policy (no-op, reserved) -> conntrack lookup
 *     hit:  conntrack update ----------------------------------------------.
 *     miss: service lookup -> backend select -> NAT plan -> conntrack create -+-> translate -> deliver
 *                             `-> no backend: drop, or reject (ICMP port unreachable)
 *   ICMP errors: quoted tuple -> conntrack lookup -> translate outer + quoted -> deliver
 *
 * Each stage sets the verdict (verdicts.h) when it ends the pipeline; the verdict is counted
 * once per packet, how a translated packet left is counted too. */
#include "common.h"
#include "parse.h"
#include "verdicts.h"
#include "lb.h"
#include "maglev.h"
#include "conntrack.h"
#include "nat.h"
#include "fib.h"
#include "icmp.h"

/* Load-time config (.rodata), besides node_ipv4 and the SNAT ports (nat.h) and the conntrack
 * timeouts (conntrack.h). cluster_cidr: the pods' addresses. A ClusterIP flow from outside it
 * to a backend on another node is SNATed (kube-proxy's --cluster-cidr masquerade rule), so the
 * reply comes back here; length 0 counts every client as the cluster's. */
const volatile __be32 cluster_cidr_ipv4 = 0;
const volatile __u8 cluster_cidr_len = 0;

/* A stage returns STAGE_NEXT to go on, or the TC action that ends the pipeline. */
#define STAGE_NEXT -1

/* Bytes of headers the stages may read: Ethernet, IPv4 with options, ICMP, the quoted IPv4
 * with options and a whole TCP header. When a parser runs out of linear data (a driver or GRO
 * left headers in paged fragments), up to this much is pulled and the parse redone: only then,
 * since pulling copies, and GRO packets often carry just their headers linear. */
#define LB_PULL_LEN 192

/* Whether the packet has bytes within the first LB_PULL_LEN that are not linear. */
static __always_inline bool lb_headers_paged(struct __sk_buff *skb)
{
	__u32 need = skb->len < LB_PULL_LEN ? skb->len : LB_PULL_LEN;

	return skb_data(skb) + need > skb_data_end(skb);
}

static __always_inline void lb_pull_headers(struct __sk_buff *skb)
{
	bpf_skb_pull_data(skb, skb->len < LB_PULL_LEN ? skb->len : LB_PULL_LEN);
}

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
};

/* ---- Stage: parse ---------------------------------------------------------------------- */

static __always_inline int stage_parse(struct __sk_buff *skb, struct lb_ctx *c)
{
	bool gso = skb->gso_size != 0;
	int ret;

	ret = parse_ipv4(skb_data(skb), skb_data_end(skb), skb->len, gso, &c->pkt);
	if (ret == PARSE_MALFORMED && lb_headers_paged(skb)) {
		lb_pull_headers(skb);
		ret = parse_ipv4(skb_data(skb), skb_data_end(skb), skb->len, gso, &c->pkt);
	}
	switch (ret) {
	case PARSE_OK:
		return STAGE_NEXT;
	case PARSE_NOT_IPV4:
		c->verdict = VERDICT_PASS_NOT_IPV4;
		return TC_ACT_OK;
	case PARSE_FRAGMENT:
		c->verdict = VERDICT_PASS_FRAGMENT;
		return TC_ACT_OK;
	default:
		c->verdict = VERDICT_PASS_MALFORMED;
		return TC_ACT_OK;
	}
}

/* ---- Stage: policy (NO-OP, reserved) --------------------------------------------------- *
 * The network-policy issue puts its stage here: look up the source's identity (address ->
 * identity map), then the verdict for (identity, destination port/proto); a deny sets
 * VERDICT_DROP_POLICY and returns TC_ACT_SHOT. The parsed packet is in c->pkt. Policy that
 * must see the backend (Kubernetes NetworkPolicy selects the pod behind a service) can also
 * hook after stage_backend_select, where c->backend is known, for new flows only. */
static __always_inline int stage_policy(struct __sk_buff *skb, struct lb_ctx *c)
{
	return STAGE_NEXT;
}

/* ---- Stage: conntrack lookup ----------------------------------------------------------- *
 * The packet as a FORWARD key (client -> frontend), then as a REPLY key (backend -> client or
 * SNAT address). A dead FORWARD entry, or a finished one that a new SYN reopens, is replaced by
 * a new flow; its REPLY key is kept so the new flow can retire it. */
static __always_inline void stage_ct_lookup(struct lb_ctx *c)
{
	struct ct4_key *k = &c->key;
	struct ct4_entry *e;

	k->saddr = c->pkt.saddr;
	k->daddr = c->pkt.daddr;
	k->sport = c->pkt.sport;
	k->dport = c->pkt.dport;
	k->proto = c->pkt.proto;
	k->dir = CT_DIR_FORWARD;
	e = bpf_map_lookup_elem(&ct4, k);
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
		return TC_ACT_OK;
	}
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & TH_RST)) {
		c->verdict = VERDICT_PASS_TCP_RST;
		return TC_ACT_OK;
	}
	return STAGE_NEXT;
}

/* ---- Stage: no backend ----------------------------------------------------------------- *
 * As kube-proxy: traffic policy Local with no endpoint on this node is dropped (the client
 * times out); a service with no endpoint at all is rejected with ICMP port unreachable, which
 * the client's stack turns into ECONNREFUSED at once. The error goes back where the packet came
 * from: out of the device it arrived on at ingress, into the stack at egress (a local client). */
static __always_inline int stage_no_backend(struct __sk_buff *skb, struct lb_ctx *c)
{
	if (c->svc->flags & LB_F_LOCAL_ONLY) {
		c->verdict = VERDICT_DROP_NO_LOCAL_BACKEND;
		return TC_ACT_SHOT;
	}
	c->verdict = VERDICT_DROP_NO_BACKEND;
	if (!icmp4_may_answer(c->pkt.saddr) || !icmp4_error_allowed(c->now))
		return TC_ACT_SHOT;
	if (icmp4_unreach_in_place(skb, &c->pkt, ICMP_PORT_UNREACH))
		return TC_ACT_SHOT;
	c->verdict = VERDICT_REJECT_NO_BACKEND;
	/* Only TC_ACT_REDIRECT or TC_ACT_SHOT; said so, the verifier need not follow STAGE_NEXT. */
	if (bpf_redirect(skb->ifindex, c->hook == LB_HOOK_EGRESS ? BPF_F_INGRESS : 0) != TC_ACT_REDIRECT)
		return TC_ACT_SHOT;
	return TC_ACT_REDIRECT;
}

/* ---- Stage: backend select ------------------------------------------------------------- *
 * Random slot, or the client's affinity entry (lb4_select_backend, lb.h); external frontends
 * by Maglev when lb_maglev_external is set (maglev.h). */
static __always_inline int stage_backend_select(struct __sk_buff *skb, struct lb_ctx *c)
{
	const struct lb_service *svc = c->svc;
	__u32 id;

	if (!svc->backend_count)
		return stage_no_backend(skb, c);
	if (lb_maglev_external && c->scope == LB_SCOPE_EXTERNAL)
		id = lb4_select_backend_maglev(svc, c->pkt.saddr, c->pkt.daddr, c->pkt.sport, c->pkt.dport,
					       c->pkt.proto);
	else
		id = lb4_select_backend(svc, c->pkt.saddr);
	c->backend = id ? lb4_lookup_backend(id) : NULL;
	if (!c->backend) {
		c->verdict = VERDICT_DROP_BACKEND_MISSING;
		return TC_ACT_SHOT;
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
static __always_inline bool lb4_from_cluster(__be32 addr)
{
	__u32 mask;

	if (!cluster_cidr_len || addr == node_ipv4)
		return true;
	mask = cluster_cidr_len >= 32 ? ~0U : ~0U << (32 - cluster_cidr_len);
	return (bpf_ntohl(addr) & mask) == (bpf_ntohl(cluster_cidr_ipv4) & mask);
}

static __always_inline int stage_nat_plan(struct lb_ctx *c)
{
	const struct lb4_backend *be = c->backend;
	struct ct4_entry *e = &c->fresh;
	bool remote = !(be->flags & LB_BACKEND_LOCAL);
	bool snat = be->address == c->pkt.saddr;

	if (!(c->svc->flags & LB_F_LOCAL_ONLY) && remote)
		snat |= c->scope == LB_SCOPE_EXTERNAL || !lb4_from_cluster(c->pkt.saddr);

	e->client_addr = c->pkt.saddr;
	e->client_port = c->pkt.sport;
	e->frontend_addr = c->pkt.daddr;
	e->frontend_port = c->pkt.dport;
	e->backend_addr = be->address;
	e->backend_port = be->port;
	e->snat_addr = c->pkt.saddr;
	e->snat_port = c->pkt.sport;
	if (snat) {
		if (!node_ipv4) {
			c->verdict = VERDICT_DROP_SNAT_NO_ADDRESS;
			return TC_ACT_SHOT;
		}
		e->snat_addr = node_ipv4;
		e->flags |= CT_F_SNAT;
	}
	return STAGE_NEXT;
}

/* ---- Stage: conntrack create ----------------------------------------------------------- *
 * The REPLY entry first: with SNAT, writing it claims the port; without, a live REPLY entry of
 * another flow with the same key (the same client port to another frontend of the same backend)
 * would make replies ambiguous, so the new flow is dropped instead. Then the FORWARD entry. */
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

	if (e->flags & CT_F_SNAT) {
		if (nat4_snat_claim(e, proto, c->now)) {
			c->verdict = VERDICT_DROP_SNAT_EXHAUSTED;
			return TC_ACT_SHOT;
		}
		ct4_reply_key(e, proto, &rkey);
	} else {
		ct4_reply_key(e, proto, &rkey);
		old = bpf_map_lookup_elem(&ct4, &rkey);
		if (old && ct4_alive(old, c->now) && !ct4_same_forward(old, e)) {
			c->verdict = VERDICT_DROP_CT_CLASH;
			return TC_ACT_SHOT;
		}
		if (bpf_map_update_elem(&ct4, &rkey, e, BPF_ANY)) {
			c->verdict = VERDICT_DROP_CT_CREATE;
			return TC_ACT_SHOT;
		}
	}
	if (bpf_map_update_elem(&ct4, &c->key, e, BPF_ANY)) {
		bpf_map_delete_elem(&ct4, &rkey);
		c->verdict = VERDICT_DROP_CT_CREATE;
		return TC_ACT_SHOT;
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

/* ---- Stage: translate (DNAT + SNAT forward, reverse NAT on replies) -------------------- */

static __always_inline int stage_translate(struct __sk_buff *skb, struct lb_ctx *c, struct nat4_target *t)
{
	nat4_target_of(c->ct, c->dir, t);
	if (nat4_rewrite(skb, &c->pkt, t)) {
		c->verdict = VERDICT_DROP_WRITE;
		return TC_ACT_SHOT;
	}
	return STAGE_NEXT;
}

/* ---- Stage: deliver -------------------------------------------------------------------- *
 * Forward packets go to the backend by the FIB (a local pod's veth, or the node that runs it).
 * Replies translated at ingress too: their source may now be a node address, which the stack's
 * input path would drop as a martian. Replies at egress are already on their way out. */
static __always_inline int stage_deliver(struct __sk_buff *skb, struct lb_ctx *c, const struct nat4_target *t)
{
	if (c->dir == CT_DIR_REPLY && c->hook == LB_HOOK_EGRESS) {
		verdict_count(VERDICT_DELIVER_STACK, skb->len);
		return TC_ACT_OK;
	}
	return fib4_redirect(skb, &c->pkt, t->saddr, t->daddr);
}

/* ---- ICMP errors about a translated flow ----------------------------------------------- *
 * The quoted packet, reversed, is a packet of the direction the error travels in: a REPLY key
 * when the error answers a forward packet (from the backend's side: port unreachable, or a
 * router's fragmentation needed / time exceeded), a FORWARD key when it answers a reply (from
 * the client's side). Errors do not refresh or change the flow. */
static __always_inline int stage_icmp(struct __sk_buff *skb, struct lb_ctx *c)
{
	void *data = skb_data(skb);
	void *data_end = skb_data_end(skb);
	__u8 type = c->pkt.icmp_type;
	struct ct4_key *k = &c->key;
	struct nat4_target t;
	struct ipv4_quote q;
	struct ct4_entry *e;
	int ret;

	if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED && type != ICMP_PARAMETERPROB) {
		c->verdict = VERDICT_PASS_ICMP;
		return TC_ACT_OK;
	}
	ret = parse_ipv4_quote(data, data_end, c->pkt.l4_off + sizeof(struct icmphdr),
			       c->pkt.l3_off + c->pkt.tot_len, &q);
	if (ret == PARSE_MALFORMED && lb_headers_paged(skb)) {
		lb_pull_headers(skb);
		ret = parse_ipv4_quote(skb_data(skb), skb_data_end(skb), c->pkt.l4_off + sizeof(struct icmphdr),
				       c->pkt.l3_off + c->pkt.tot_len, &q);
	}
	if (ret != PARSE_OK || (q.proto != IPPROTO_TCP && q.proto != IPPROTO_UDP)) {
		c->verdict = ret == PARSE_MALFORMED ? VERDICT_PASS_MALFORMED : VERDICT_PASS_ICMP;
		return TC_ACT_OK;
	}
	c->now = bpf_ktime_get_ns();
	k->saddr = q.daddr;
	k->daddr = q.saddr;
	k->sport = q.dport;
	k->dport = q.sport;
	k->proto = q.proto;
	k->dir = CT_DIR_REPLY;
	e = bpf_map_lookup_elem(&ct4, k);
	if (!e || !ct4_alive(e, c->now)) {
		k->dir = CT_DIR_FORWARD;
		e = bpf_map_lookup_elem(&ct4, k);
		if (!e || !ct4_alive(e, c->now)) {
			c->verdict = VERDICT_PASS_ICMP;
			return TC_ACT_OK;
		}
	}
	c->dir = k->dir;
	nat4_target_of(e, c->dir, &t);
	if (nat4_icmp_error(skb, &c->pkt, &q, &t)) {
		c->verdict = VERDICT_DROP_WRITE;
		return TC_ACT_SHOT;
	}
	c->verdict = VERDICT_ICMP_ERROR;
	return stage_deliver(skb, c, &t);
}

/* ---- The pipeline ---------------------------------------------------------------------- */

static __always_inline int lb4_tc(struct __sk_buff *skb, __u8 hook)
{
	struct lb_ctx c = { .hook = hook };
	struct nat4_target t;
	int ret;

	ret = stage_parse(skb, &c);
	if (ret == STAGE_NEXT)
		ret = stage_policy(skb, &c);
	if (ret != STAGE_NEXT)
		goto out;
	if (c.pkt.proto == IPPROTO_ICMP) {
		ret = stage_icmp(skb, &c);
		goto out;
	}
	if (c.pkt.proto != IPPROTO_TCP && c.pkt.proto != IPPROTO_UDP) {
		c.verdict = VERDICT_PASS_OTHER_PROTO;
		ret = TC_ACT_OK;
		goto out;
	}

	c.now = bpf_ktime_get_ns();
	stage_ct_lookup(&c);
	if (c.ct) {
		c.verdict = c.dir == CT_DIR_FORWARD ? VERDICT_CT_FORWARD : VERDICT_CT_REPLY;
		ct4_update(c.ct, c.pkt.proto, c.dir, c.pkt.tcp_flags, c.now);
	} else {
		ret = stage_service_lookup(&c);
		if (ret == STAGE_NEXT)
			ret = stage_backend_select(skb, &c);
		if (ret == STAGE_NEXT)
			ret = stage_nat_plan(&c);
		if (ret == STAGE_NEXT)
			ret = stage_ct_create(&c);
		if (ret != STAGE_NEXT)
			goto out;
		c.verdict = VERDICT_NEW_FLOW;
	}
	ret = stage_translate(skb, &c, &t);
	if (ret == STAGE_NEXT)
		ret = stage_deliver(skb, &c, &t);
out:
	verdict_count(c.verdict, skb->len);
	return ret;
}

SEC("tc")
int lb_tc_ingress(struct __sk_buff *skb)
{
	return lb4_tc(skb, LB_HOOK_INGRESS);
}

SEC("tc")
int lb_tc_egress(struct __sk_buff *skb)
{
	return lb4_tc(skb, LB_HOOK_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
