/**
 * The packet_stats object (bpf/packet_stats.c): per-protocol counters and a flow table. The
 * codecs mirror bpf/include/stats.h and are checked against the object's BTF at load.
 */
import { be16, ipv4, pad, struct, u8, u16, u32, u64 } from '../bpf/codec.js';
import type { ObjectSpec } from '../bpf/object.js';

/** enum stats_proto: index of proto_stats. Never renumbered. */
export const StatsProto = { OTHER: 0, TCP: 1, UDP: 2, ICMP: 3, ICMPV6: 4, NON_IP: 5 } as const;

export const ProtoCounter = struct('proto_counter', { packets: u64, bytes: u64 });

export const FlowKeyV4 = struct('flow_key_v4', {
  saddr: ipv4,
  daddr: ipv4,
  sport: be16,
  dport: be16,
  proto: u8,
  pad: pad(3),
});

export const FlowCounters = struct('flow_counters', {
  packets: u64,
  bytes: u64,
  first_seen_ns: u64,
  last_seen_ns: u64,
});

export const FlowEvent = struct('flow_event', {
  key: FlowKeyV4,
  timestamp_ns: u64,
  ifindex: u32,
  pad: pad(4),
});

export const packetStatsSpec = {
  file: 'packet_stats.bpf.o',
  maps: {
    proto_stats: { key: u32, value: ProtoCounter, perCpu: true, counters: true },
    flow_table: { key: FlowKeyV4, value: FlowCounters },
    flow_events: { ringbuf: FlowEvent },
  },
  programs: ['stats_xdp', 'stats_tc'],
  rodata: { drop_udp_dport: u16, track_flows: u8 },
} as const satisfies ObjectSpec;
