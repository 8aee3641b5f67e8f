/* The packet context a program runs with, behind one set of accessors, so parsing, NAT,
 * checksums, conntrack and FIB code exist once and serve both TC (struct __sk_buff) and XDP
 * (struct xdp_md). As Cilium's __ctx_buff: the object picks its context before including any
 * sluice header (#define SLUICE_CTX_XDP in lb_xdp.c); TC is the default.
 *
 * Packet bytes are written by direct packet access in both. The one thing that must differ is
 * the TCP/UDP checksum: at TC the kernel helper knows the skb's checksum state (with
 * CHECKSUM_PARTIAL the field holds only the pseudo-header sum, so port changes must not touch
 * it; with CHECKSUM_COMPLETE skb->csum must follow a pseudo-header change), at XDP the field is
 * always a full checksum and is updated in place. Changes to the IP header are neutral to
 * skb->csum (its own checksum compensates them), so they are direct writes everywhere. */
#ifndef SLUICE_CTX_H
#define SLUICE_CTX_H

#include "common.h"
#include "csum.h"
#include "parse.h"

#ifdef SLUICE_CTX_XDP
#define __ctx_buff xdp_md
#define CTX_PASS XDP_PASS
#define CTX_DROP XDP_DROP

static __always_inline void *ctx_data(const struct xdp_md *ctx)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(ctx), "i"(offsetof(struct xdp_md, data)));
	return p;
}

static __always_inline void *ctx_data_end(const struct xdp_md *ctx)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(ctx), "i"(offsetof(struct xdp_md, data_end)));
	return p;
}

static __always_inline __u32 ctx_len(const struct xdp_md *ctx)
{
	return ctx_data_end(ctx) - ctx_data(ctx);
}

static __always_inline __u32 ctx_ifindex(const struct xdp_md *ctx)
{
	return ctx->ingress_ifindex;
}

/* Adds the accumulated changes (csum.h: csum_acc*) to the L4 checksum at off: pseudo, the
 * changes the pseudo-header saw (addresses), ports, those only the segment saw. */
static __always_inline int ctx_l4_csum_update(struct xdp_md *ctx, __u32 off, bool udp, __u32 pseudo, __u32 ports)
{
	void *data_end = ctx_data_end(ctx);
	__u16 *check = ctx_data(ctx) + (off & 0xff);

	if ((void *)(check + 1) > data_end)
		return -1;
	*check = udp ? csum_apply_udp(*check, pseudo + ports) : csum_apply(*check, pseudo + ports);
	return 0;
}
#else
#define SLUICE_CTX_SKB
#define __ctx_buff __sk_buff
#define CTX_PASS TC_ACT_OK
#define CTX_DROP TC_ACT_SHOT

static __always_inline void *ctx_data(const struct __sk_buff *skb)
{
	return skb_data(skb);
}

static __always_inline void *ctx_data_end(const struct __sk_buff *skb)
{
	return skb_data_end(skb);
}

static __always_inline __u32 ctx_len(const struct __sk_buff *skb)
{
	return skb->len;
}

static __always_inline __u32 ctx_ifindex(const struct __sk_buff *skb)
{
	return skb->ifindex;
}

/* The same by the helper, which follows the skb's checksum state (see above). A diff of 0
 * bytes (size 0) is added as is; UDP's "no checksum" stays 0 (BPF_F_MARK_MANGLED_0). */
static __always_inline int ctx_l4_csum_update(struct __sk_buff *skb, __u32 off, bool udp, __u32 pseudo, __u32 ports)
{
	__u64 mm0 = udp ? BPF_F_MARK_MANGLED_0 : 0;
	int ret = 0;

	if (pseudo)
		ret = bpf_l4_csum_replace(skb, off, 0, csum_fold(pseudo), BPF_F_PSEUDO_HDR | mm0);
	if (!ret && ports)
		ret = bpf_l4_csum_replace(skb, off, 0, csum_fold(ports), mm0);
	return ret;
}
#endif

#endif
