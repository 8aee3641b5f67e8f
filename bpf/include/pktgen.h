/* The packet generator's and packet counters' shared layouts (bpf/xdp_gen.c, bpf/xdp_count.c,
 * bpf/xdp_baseline.c; native/xdp_gen.c builds the frame and reads the counters).
 *
 * The frame is 64 bytes (Ethernet 14 + IPv4 20 + UDP 8 + 22 payload, no FCS on a veth): the
 * minimum Ethernet frame, the usual "64-byte packets" of packet-rate benchmarks. */
#ifndef SLUICE_PKTGEN_H
#define SLUICE_PKTGEN_H

#define PKTGEN_FRAME_LEN 64
#define PKTGEN_ETH_LEN 14
#define PKTGEN_IP_LEN 20
#define PKTGEN_UDP_LEN 8

/* Offsets of the fields the generator rewrites per packet, from the start of the frame. */
#define PKTGEN_OFF_IP_CHECK (PKTGEN_ETH_LEN + 10)
#define PKTGEN_OFF_SADDR (PKTGEN_ETH_LEN + 12)
#define PKTGEN_OFF_SPORT (PKTGEN_ETH_LEN + PKTGEN_IP_LEN)
#define PKTGEN_OFF_UDP_CHECK (PKTGEN_ETH_LEN + PKTGEN_IP_LEN + 6)

/* The counters' map: one per-CPU __u64 at key 0, the packets a counting program saw. */
#define PKTCOUNT_MAP_DEF                                   \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);   \
		__uint(max_entries, 1);                    \
		__type(key, __u32);                        \
		__type(value, __u64);                      \
	} pkt_count SEC(".maps")

#endif
