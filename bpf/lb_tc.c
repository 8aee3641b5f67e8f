// SPDX-License-Identifier: GPL-2.0
/* Per-packet service load balancing at TC: the kube-proxy replacement for traffic that enters
 * the node (NodePort on the node address, LoadBalancer addresses, externalIPs: scope EXTERNAL)
 * and for ClusterIP traffic that reaches TC because it bypassed the socket hooks (scope
 * INTERNAL).
 *
 * Attach lb_tc_ingress on the node's uplink ingress (and on the host side of pod veths, for
 * traffic from local pods), lb_tc_egress on the uplink egress. The same pipeline runs at both:
 *
 *   parse -> policy (no-op, reserved) -> conntrack lookup (to a pod: as a REPLY only)
 *     hit:  conntrack update ----------------------------------------------.
 *     miss: service lookup -> backend select -> NAT plan -> conntrack create -+-> translate -> deliver
 *           |                 `-> no backend: drop, or reject (ICMP port unreachable)
 *           `-> to a pod (no frontend there: lb4_to_pod): pass
 *   ICMP errors: quoted tuple -> conntrack lookup -> translate outer + quoted -> deliver
 *
 * The stages that do not depend on the attach point (conntrack, service lookup, backend select,
 * NAT plan, conntrack create) live in lb_pipeline.h and are lb_xdp.c's too. With lb.mode dsr or
 * hybrid, a new external flow to another node's backend leaves with a DSR option instead of
 * SNAT (dsr.h), and every packet arriving with one teaches this node its REPLY entry (DSR learn,
 * before conntrack lookup).
 *
 * Each stage sets the verdict (verdicts.h) when it ends the pipeline; the verdict is counted
 * once per packet, how a translated packet left is counted too. */
#include "common.h"
#include "ctx.h"
#include "parse.h"
#include "verdicts.h"
#include "lb.h"
#include "maglev.h"
#include "conntrack.h"
#include "nat.h"
#include "fib.h"
#include "icmp.h"
#include "dsr.h"
#include "lb_pipeline.h"

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

/* ---- Stage: translate (DNAT + SNAT forward, reverse NAT on replies) -------------------- */

static __always_inline int stage_translate(struct __sk_buff *skb, struct lb_ctx *c, struct nat4_target *t)
{
	nat4_target_of(c->ct, c->dir, t);
	if (nat4_rewrite(skb, &c->pkt, t)) {
		c->verdict = VERDICT_DROP_WRITE;
		return TC_ACT_SHOT;
	}
	if (c->dir == CT_DIR_FORWARD && (c->ct->flags & CT_F_DSR) &&
	    dsr4_push_opt(skb, &c->pkt, c->ct->frontend_addr, c->ct->frontend_port)) {
		c->verdict = VERDICT_DROP_DSR_NO_ROOM;
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
	/* DSR at ingress only: egress carries this node's own clients. */
	struct lb_ctx c = { .hook = hook, .dsr_ok = hook == LB_HOOK_INGRESS };
	struct nat4_target t;
	bool to_pod;
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
	if (hook == LB_HOOK_INGRESS && stage_dsr_learn(skb, &c.pkt, c.now)) {
		c.verdict = VERDICT_PASS_DSR_FLOW;
		ret = TC_ACT_OK;
		goto out;
	}
	to_pod = lb4_to_pod(c.pkt.daddr);
	stage_ct_lookup(&c, to_pod);
	if (c.ct) {
		c.verdict = c.dir == CT_DIR_FORWARD ? VERDICT_CT_FORWARD : VERDICT_CT_REPLY;
		ct4_update(c.ct, c.pkt.proto, c.dir, c.pkt.tcp_flags, c.now);
	} else if (to_pod) {
		c.verdict = VERDICT_PASS_NO_SERVICE;
		ret = TC_ACT_OK;
		goto out;
	} else {
		ret = stage_service_lookup(&c);
		if (ret == STAGE_NEXT)
			ret = stage_backend_select(&c);
		if (ret == STAGE_NO_BACKEND)
			ret = stage_no_backend(skb, &c);
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
