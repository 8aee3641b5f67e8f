/**
 * Codecs of the load-balancing maps (bpf/include/lb.h), shared by the socket LB and the TC LB
 * objects and by the agent that programs them. Checked against each object's BTF at load.
 */
import { be16, ipv4, pad, struct, u8, u16, u32, u64 } from '../bpf/codec.js';
import type { KeyValueMapSpec } from '../bpf/object.js';

/** enum lb_scope */
export const LbScope = { EXTERNAL: 0, INTERNAL: 1 } as const;

/** enum lb_service_flags */
export const LbServiceFlag = {
  CLUSTER_IP: 1 << 0,
  NODEPORT: 1 << 1,
  EXTERNAL_IP: 1 << 2,
  LOADBALANCER: 1 << 3,
  AFFINITY: 1 << 4,
  LOCAL_ONLY: 1 << 5,
} as const;

/** enum lb_backend_flags */
export const LbBackendFlag = { LOCAL: 1 << 0, TERMINATING: 1 << 1 } as const;

export const IPPROTO = { TCP: 6, UDP: 17 } as const;

export const Lb4Key = struct('lb4_key', { address: ipv4, dport: be16, proto: u8, scope: u8 });

export const LbService = struct('lb_service', {
  service_id: u32,
  rev_nat_id: u32,
  backend_count: u16,
  flags: u16,
  affinity_timeout: u32,
});

export const LbSlotKey = struct('lb_slot_key', { service_id: u32, slot: u32 });

export const Lb4Backend = struct('lb4_backend', {
  address: ipv4,
  port: be16,
  proto: u8,
  flags: u8,
  node_address: ipv4,
  pad: pad(4),
});

export const Lb4ReverseNat = struct('lb4_reverse_nat', { address: ipv4, port: be16, pad: pad(2) });

export const Lb4AffinityKey = struct('lb4_affinity_key', {
  netns_cookie: u64,
  service_id: u32,
  client_address: ipv4,
});

export const LbAffinityValue = struct('lb_affinity_value', {
  last_used_ns: u64,
  backend_id: u32,
  pad: pad(4),
});

/** The shared maps, as every object that includes lb.h declares them. */
export const lbMaps = {
  lb4_services: { key: Lb4Key, value: LbService },
  lb_slots: { key: LbSlotKey, value: u32 },
  lb4_backends: { key: u32, value: Lb4Backend },
  lb4_reverse_nat: { key: u32, value: Lb4ReverseNat },
  lb4_affinity: { key: Lb4AffinityKey, value: LbAffinityValue },
} as const satisfies Record<string, KeyValueMapSpec>;
