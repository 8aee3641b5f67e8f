// SPDX-License-Identifier: GPL-2.0
/* The XDP fast path of the per-packet load balancer: NodePort, LoadBalancer and externalIP
 * traffic balanced on the node's uplink before an skb exists. Attach lb_xdp on the uplink
 * (config xdp.interfaces); lb_tc.c stays attached behind it and finishes what XDP hands off.
 *
 *   parse --- not IPv4 / not TCP-UDP ----------------------------------------> XDP_PASS
 *         |-- malformed --------------------------------------------------> XDP_DROP (counted)
 *         `-- first fragment to a frontend --------------------------------> XDP_DROP (counted)
 *   not to a frontend nor to this node's address (xdp_balances) -----------> XDP_PASS (TC's)
 *   conntrack lookup (ct4, shared with TC)
 *     hit:  ----------------------------------------------------------.
 *     miss: service lookup -> backend select -> NAT plan -> ct create -+-> FIB lookup of the
 *           `-> no frontend, no backend: XDP_PASS (TC decides)           translated packet
 *       out of this device, neighbour known: NAT (+ DSR option), TTL, MACs -> XDP_TX
 *       (the next hop from a one-second per-CPU cache of FIB answers, fib_cache.h)
 *       anything else (a local pod, unresolved neighbour, MTU, TTL): XDP_PASS, and TC finds the
 *       conntrack entry made here (its FORWARD hit): the service is looked up once per flow.
 *
 * The stages in lb_pipeline.h are TC's own; only parse and deliver differ. Packets XDP passes
 * untouched are not counted here: TC counts them as it always did. */
#define SLUICE_CTX_XDP
#include "common.h"
#include "ctx.h"
#include "parse.h"
#include "verdicts.h"
#include "lb.h"
#include "conntrack.h"
#include "nat.h"
#include "fib.h"
#include "fib_cache.h"
#include "dsr.h"
#include "lb_pipeline.h"

/* First fragments to a frontend cannot be balanced (the later ones carry no ports and would
 * reach the stack untranslated): dropped and counted, as Cilium does without fragment
 * tracking. Later fragments, and first fragments of anything else, pass to the stack. */
static __always_inline int xdp_fragment(struct lb_ctx *c, __u32 len)
{
	const struct ipv4_packet *p = &c->pkt;

	if (!p->l4_csum_off)
		return XDP_PASS;
	if (!lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_EXTERNAL) &&
	    !lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_INTERNAL))
		return XDP_PASS;
	verdict_count(VERDICT_DROP_FRAGMENT, len);
	return XDP_DROP;
}

/* What XDP balances: packets to a frontend, and anything to this node's own address (NodePort
 * flows, and the replies of the flows it SNATs, whose destination is node_ipv4). The rest, the
 * node's pods' traffic above all, is TC's: TC looks every packet up in conntrack anyway (replies
 * of flows it translated without SNAT, DSR options to learn), so looking here too would only pay
 * the same cold conntrack buckets twice for a packet XDP passes. That keeps traffic for no
 * frontend at two service lookups, keyed by its destination alone (no per-flow state: the same
 * few buckets for all of a pod's flows). The price: a packet of an established flow to a
 * frontend other than the node's address (a LoadBalancer IP, an externalIP) pays one warm
 * service lookup before its conntrack hit, and a new one repeats it in stage_service_lookup;
 * tens of ns, against two cold conntrack buckets for every pod packet. */
static __always_inline bool xdp_balances(const struct ipv4_packet *p)
{
	return p->daddr == node_ipv4 || lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_EXTERNAL) ||
	       lb4_lookup_service(p->daddr, p->dport, p->proto, LB_SCOPE_INTERNAL);
}

/* Hands the packet to TC, which translates it by the conntrack entry found or made here. */
static __always_inline int xdp_handoff(__u32 len)
{
	verdict_count(VERDICT_XDP_HANDOFF, len);
	return XDP_PASS;
}

SEC("xdp")
int lb_xdp(struct xdp_md *ctx)
{
	struct lb_ctx c = { .hook = LB_HOOK_INGRESS, .dsr_ok = true };
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	__u32 len = data_end - data;
	struct bpf_fib_lookup fib = {};
	struct nat4_target t;
	bool dsr, fresh = false;
	long rc;
	int ret;

	ret = parse_ipv4(data, data_end, len, false, &c.pkt);
	if (ret == PARSE_NOT_IPV4)
		return XDP_PASS;
	if (ret == PARSE_MALFORMED) {
		verdict_count(VERDICT_DROP_MALFORMED, len);
		return XDP_DROP;
	}
	if (c.pkt.proto != IPPROTO_TCP && c.pkt.proto != IPPROTO_UDP)
		return XDP_PASS;
	if (ret == PARSE_FRAGMENT)
		return xdp_fragment(&c, len);

	if (!xdp_balances(&c.pkt))
		return XDP_PASS;

	c.now = bpf_ktime_get_ns();
	/* xdp_balances passed only packets to a frontend or to this node: never to a pod. */
	stage_ct_lookup(&c, false);
	if (!c.ct) {
		ret = stage_service_lookup(&c);
		if (ret == STAGE_NEXT)
			ret = stage_backend_select(&c);
		if (ret == STAGE_NEXT)
			ret = stage_nat_plan(&c);
		if (ret == STAGE_NEXT)
			ret = stage_ct_create(&c);
		/* No frontend or no backend: TC looks again and passes, drops or rejects. */
		if (ret == XDP_PASS || ret == STAGE_NO_BACKEND)
			return XDP_PASS;
		if (ret != STAGE_NEXT) {
			verdict_count(c.verdict, len);
			return ret;
		}
		fresh = true;
		verdict_count(VERDICT_NEW_FLOW, len);
	}

	nat4_target_of(c.ct, c.dir, &t);
	dsr = c.dir == CT_DIR_FORWARD && (c.ct->flags & CT_F_DSR);
	rc = fib4_lookup_cached(ctx, &c.pkt, t.saddr, t.daddr, c.pkt.tot_len + (dsr ? DSR_OPT_LEN : 0), &fib,
				c.now);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || fib.ifindex != ctx->ingress_ifindex || c.pkt.ttl <= 1)
		return xdp_handoff(len);
	if (!fresh) {
		verdict_count(c.dir == CT_DIR_FORWARD ? VERDICT_CT_FORWARD : VERDICT_CT_REPLY, len);
		ct4_update(c.ct, c.pkt.proto, c.dir, c.pkt.tcp_flags, c.now);
	}
	if (nat4_rewrite(ctx, &c.pkt, &t))
		goto write_failed;
	if (dsr && dsr4_push_opt(ctx, &c.pkt, c.ct->frontend_addr, c.ct->frontend_port)) {
		verdict_count(VERDICT_DROP_DSR_NO_ROOM, len);
		return XDP_DROP;
	}
	if (fib4_rewrite_l2(ctx, &c.pkt, &fib, true))
		goto write_failed;
	verdict_count(VERDICT_DELIVER_XDP_TX, len);
	return XDP_TX;

write_failed:
	verdict_count(VERDICT_DROP_WRITE, len);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
