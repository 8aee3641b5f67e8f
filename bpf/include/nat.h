/* Address and port translation of IPv4 packets: DNAT/SNAT and their reversal by a conntrack
 * entry, SNAT port allocation, and ICMP errors about a translated flow.
 *
 * A flow's entry gives, for each direction, the addresses its packets leave with:
 *   FORWARD: snat:port     -> backend:port
 *   REPLY:   frontend:port -> client:port
 * nat4_rewrite puts them on a TCP/UDP packet; nat4_icmp_error puts them on the outer header of
 * an ICMP error travelling in that direction and restores the packet it quotes (which went the
 * other way, already translated) to what its sender sent. */
#ifndef SLUICE_NAT_H
#define SLUICE_NAT_H

#include "common.h"
#include "csum.h"
#include "ctx.h"
#include "parse.h"
#include "conntrack.h"

/* Load-time config: the node's address (SNAT source) and the SNAT source ports, host order.
 * The default range lies above Linux's default ephemeral ports (32768-60999), so SNATed flows
 * never take a port a local socket uses; the agent keeps the two apart if it widens either. */
const volatile __be32 node_ipv4 = 0;
const volatile __u16 snat_port_min = 61000;
const volatile __u16 snat_port_max = 65535;

/* Ports tried, from a random start, before a new flow is dropped as SNAT_EXHAUSTED. */
#define SNAT_TRIES 32

struct nat4_target {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline void nat4_target_of(const struct ct4_entry *e, __u8 dir, struct nat4_target *t)
{
	if (dir == CT_DIR_FORWARD) {
		t->saddr = e->snat_addr;
		t->sport = e->snat_port;
		t->daddr = e->backend_addr;
		t->dport = e->backend_port;
	} else {
		t->saddr = e->frontend_addr;
		t->sport = e->frontend_port;
		t->daddr = e->client_addr;
		t->dport = e->client_port;
	}
}

/* Gives a TCP or UDP packet the target's addresses and ports by direct writes: the IP checksum
 * in place, the L4 checksum by ctx_l4_csum_update (pseudo-header changes apart from port
 * changes, as the skb's checksum state needs). Returns 0 or a negative errno (the packet may then
 * be half-written). */
static __always_inline int nat4_rewrite(struct __ctx_buff *ctx, const struct ipv4_packet *p,
					const struct nat4_target *t)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	struct iphdr *ip = data + ETH_HLEN;
	/* TCP and UDP both start with source and destination ports. The parser keeps l4_off below
	 * 128; the mask lets the verifier see it. */
	__be16 *ports = data + (p->l4_off & 0x7f);
	__u32 addr_acc = 0, port_acc = 0;

	if ((void *)(ip + 1) > data_end || (void *)(ports + 2) > data_end)
		return -1;
	if (p->saddr != t->saddr)
		addr_acc = csum_acc32(addr_acc, p->saddr, t->saddr);
	if (p->daddr != t->daddr)
		addr_acc = csum_acc32(addr_acc, p->daddr, t->daddr);
	if (p->sport != t->sport)
		port_acc = csum_acc16(port_acc, p->sport, t->sport);
	if (p->dport != t->dport)
		port_acc = csum_acc16(port_acc, p->dport, t->dport);
	if (addr_acc) {
		ip->check = csum_apply(ip->check, addr_acc);
		ip->saddr = t->saddr;
		ip->daddr = t->daddr;
	}
	ports[0] = t->sport;
	ports[1] = t->dport;
	if (!p->l4_csum_off || (!addr_acc && !port_acc))
		return 0;
	/* Helpers invalidate packet pointers: the checksum comes last. */
	return ctx_l4_csum_update(ctx, p->l4_csum_off, p->proto == IPPROTO_UDP, addr_acc, port_acc);
}

/* The outer header of an ICMP error: addresses and the IP checksum (ICMP has no pseudo-header). */
static __always_inline int nat4_rewrite_addrs(struct __ctx_buff *ctx, const struct ipv4_packet *p,
					      const struct nat4_target *t)
{
	void *data_end = ctx_data_end(ctx);
	struct iphdr *ip = ctx_data(ctx) + ETH_HLEN;
	__u32 acc = 0;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (p->saddr != t->saddr)
		acc = csum_acc32(acc, p->saddr, t->saddr);
	if (p->daddr != t->daddr)
		acc = csum_acc32(acc, p->daddr, t->daddr);
	if (!acc)
		return 0;
	ip->check = csum_apply(ip->check, acc);
	ip->saddr = t->saddr;
	ip->daddr = t->daddr;
	return 0;
}

/* Finds a free SNAT port for a new flow and claims it by writing the flow's REPLY entry, which
 * is keyed by it (backend:port -> snat_addr:port; snat_addr is the node's address, or the
 * client's own when only its port clashed, lb_pipeline.h). A port is free when no live entry
 * holds that key. Fills e->snat_port. Returns 0, or -1 when every port tried is taken. */
static __always_inline int nat4_snat_claim(struct ct4_entry *e, __u8 proto, __u64 now)
{
	__u32 range = (__u32)snat_port_max - snat_port_min + 1;
	__u32 start = bpf_get_prandom_u32();
	struct ct4_entry *old;
	struct ct4_key key;
	int i;

	if (snat_port_max < snat_port_min)
		return -1;
	for (i = 0; i < SNAT_TRIES; i++) {
		e->snat_port = bpf_htons(snat_port_min + (start + i) % range);
		ct4_reply_key(e, proto, &key);
		/* Look before inserting: an LRU map takes a node off its free list before it checks
		 * the key, so an insert that fails because the key exists costs ~4x a lookup. Keys of
		 * expired flows stay until the LRU evicts them, so on a busy node most ports of a
		 * backend have one. A free port is then taken with NOEXIST, so that another CPU
		 * claiming the same port right now cannot win it too. */
		old = bpf_map_lookup_elem(&ct4, &key);
		if (!old) {
			if (!bpf_map_update_elem(&ct4, &key, e, BPF_NOEXIST))
				return 0;
		} else if (!ct4_alive(old, now) && !bpf_map_update_elem(&ct4, &key, e, BPF_ANY)) {
			return 0;
		}
	}
	return -1;
}

/* Translates an ICMP error (destination unreachable, time exceeded, parameter problem) about a
 * tracked flow. t is the target of the direction the error travels in:
 * - the outer header gets t's addresses (as Linux's NAT does, even when a router sent it);
 * - the quoted packet went the other way: its source becomes t's destination and its
 *   destination t's source, addresses and ports, so the receiver matches it to its socket.
 * The quoted IP checksum is updated, and the quoted TCP/UDP checksum when quoted (TCP only
 * with its whole header, UDP unless 0), as the kernel does; then the ICMP checksum by the same
 * changes. Returns 0 or a negative errno. */
static __always_inline int nat4_icmp_error(struct __ctx_buff *ctx, const struct ipv4_packet *p,
					   const struct ipv4_quote *q, const struct nat4_target *t)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_data_end(ctx);
	__u32 icmp_off = p->l4_off, in_off = q->l3_off, in_l4_off = q->l4_off, csum_off = q->l4_csum_off;
	__u32 addr_acc, icmp_acc;
	struct icmphdr *icmp;
	struct iphdr *in;
	__be16 *ports;
	__u16 check;

	/* The parsers keep every offset below 256; the masks let the verifier see it. */
	icmp = data + (icmp_off & 0xff);
	in = data + (in_off & 0xff);
	ports = data + (in_l4_off & 0xff);
	if ((void *)(icmp + 1) > data_end || (void *)(in + 1) > data_end || (void *)(ports + 2) > data_end)
		return -1;

	/* Quoted addresses, and the quoted IP checksum that covers them. */
	addr_acc = csum_acc32(0, in->saddr, t->daddr);
	addr_acc = csum_acc32(addr_acc, in->daddr, t->saddr);
	check = csum_apply(in->check, addr_acc);
	icmp_acc = csum_acc16(addr_acc, in->check, check);
	in->saddr = t->daddr;
	in->daddr = t->saddr;
	in->check = check;

	/* Quoted ports, and the quoted L4 checksum (pseudo-header addresses + ports). */
	if (csum_off) {
		__u32 l4_acc = csum_acc16(addr_acc, ports[0], t->dport);
		__u16 *l4_check = data + (csum_off & 0xff);

		l4_acc = csum_acc16(l4_acc, ports[1], t->sport);
		if ((void *)(l4_check + 1) > data_end)
			return -1;
		check = q->proto == IPPROTO_UDP ? csum_apply_udp(*l4_check, l4_acc) : csum_apply(*l4_check, l4_acc);
		icmp_acc = csum_acc16(icmp_acc, *l4_check, check);
		*l4_check = check;
	}
	icmp_acc = csum_acc16(icmp_acc, ports[0], t->dport);
	icmp_acc = csum_acc16(icmp_acc, ports[1], t->sport);
	ports[0] = t->dport;
	ports[1] = t->sport;
	icmp->checksum = csum_apply(icmp->checksum, icmp_acc);

	/* The outer header: ICMP has no pseudo-header, only the IP checksum changes. */
	return nat4_rewrite_addrs(ctx, p, t);
}

#endif
