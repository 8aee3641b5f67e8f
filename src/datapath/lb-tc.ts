/**
 * The per-packet load balancer at TC (bpf/lb_tc.c): codecs of its conntrack and counters
 * (bpf/include/conntrack.h, verdicts.h), checked against the object's BTF at load, the enums by
 * name, its load-time config (.rodata), and the ObjectSpec the agent loads.
 *
 * Where it attaches: lb_tc_ingress on the node uplink's ingress (and on the host side of pod
 * veths, for traffic from local pods), lb_tc_egress on the uplink's egress. What the agent
 * programs: the shared lb maps (lb.ts). Conntrack is the program's own; the agent only reads it
 * (`sluice bpf ct list`) and may delete dead entries (expires_ns before CLOCK_MONOTONIC now).
 */
import { be16, be32, ipv4, pad, struct, u8, u16, u32, u64 } from '../bpf/codec.js';
import type { Decoded } from '../bpf/codec.js';
import type { BpfMap } from '../bpf/map.js';
import { sumPerCpu } from '../bpf/map.js';
import { SluiceError } from '../bpf/errors.js';
import type { ObjectSpec } from '../bpf/object.js';
import { lbMaps } from './lb.js';
import { maglevMaps, maglevRodataSpec } from './maglev.js';

/**
 * enum verdict (bpf/include/verdicts.h): index of verdict_stats. Never renumbered; values below
 * 128 pass or translate, 128 and above drop.
 */
export const Verdict = {
  PASS_NOT_IPV4: 0,
  PASS_NO_SERVICE: 1,
  PASS_FRAGMENT: 2,
  PASS_MALFORMED: 3,
  PASS_OTHER_PROTO: 4,
  PASS_ICMP: 5,
  PASS_TCP_RST: 6,
  PASS_DSR_FLOW: 7,
  NEW_FLOW: 16,
  CT_FORWARD: 17,
  CT_REPLY: 18,
  ICMP_ERROR: 19,
  REJECT_NO_BACKEND: 20,
  DSR_LEARNED: 21,
  DELIVER_REDIRECT: 32,
  DELIVER_REDIRECT_NEIGH: 33,
  DELIVER_STACK: 34,
  DELIVER_TTL: 35,
  DELIVER_XDP_TX: 40,
  XDP_HANDOFF: 41,
  DROP_NO_BACKEND: 128,
  DROP_NO_LOCAL_BACKEND: 129,
  DROP_BACKEND_MISSING: 130,
  DROP_SNAT_EXHAUSTED: 131,
  DROP_SNAT_NO_ADDRESS: 132,
  DROP_CT_CLASH: 133,
  DROP_CT_CREATE: 134,
  DROP_WRITE: 135,
  DROP_POLICY: 136,
  DROP_MALFORMED: 144,
  DROP_FRAGMENT: 145,
  DROP_DSR_NO_ROOM: 146,
} as const;
export type VerdictName = keyof typeof Verdict;

/** VERDICT_SLOTS: verdict_stats' size, room for verdicts not yet defined. */
export const VERDICT_SLOTS = 256;
export const isDropVerdict = (v: number): boolean => v >= 128;

const verdictNames = new Map<number, VerdictName>(
  Object.entries(Verdict).map(([name, value]) => [value, name as VerdictName]),
);
/** The verdict's name, or `verdict_<n>` for a value this build does not know. */
export function verdictName(v: number): string {
  return verdictNames.get(v) ?? `verdict_${v}`;
}

/** enum ct_dir */
export const CtDir = { FORWARD: 0, REPLY: 1 } as const;
/** enum ct_state */
export const CtState = { NONE: 0, SYN_SENT: 1, ESTABLISHED: 2, FIN: 3, CLOSE: 4 } as const;
/** enum ct_flags */
export const CtFlag = {
  SNAT: 1 << 0,
  SEEN_REPLY: 1 << 1,
  FIN_FORWARD: 1 << 2,
  FIN_REPLY: 1 << 3,
  DSR: 1 << 4,
} as const;
/** enum lb_mode (bpf/include/dsr.h): how external flows reach other nodes' backends. */
export const LbMode = { snat: 0, dsr: 1, hybrid: 2 } as const;
export type LbModeName = keyof typeof LbMode;
/** enum lb_hook: which program a packet ran in. */
export const LbHook = { INGRESS: 0, EGRESS: 1 } as const;

export const Ct4Key = struct('ct4_key', {
  saddr: ipv4,
  daddr: ipv4,
  sport: be16,
  dport: be16,
  proto: u8,
  dir: u8,
  pad: pad(2),
});
export type Ct4KeyValue = Decoded<typeof Ct4Key>;

export const Ct4Entry = struct('ct4_entry', {
  expires_ns: u64,
  created_ns: u64,
  client_addr: ipv4,
  frontend_addr: ipv4,
  backend_addr: ipv4,
  snat_addr: ipv4,
  client_port: be16,
  frontend_port: be16,
  backend_port: be16,
  snat_port: be16,
  rev_nat_id: u32,
  backend_id: u32,
  state: u8,
  flags: u8,
  pad: pad(6),
});
export type Ct4EntryValue = Decoded<typeof Ct4Entry>;

export const VerdictCounter = struct('verdict_counter', { packets: u64, bytes: u64 });

/** Conntrack timeouts, seconds. Defaults as Cilium's (bpf/include/conntrack.h). */
export interface CtTimeouts {
  tcpSyn: number;
  tcpEstablished: number;
  tcpFin: number;
  tcpClose: number;
  udp: number;
}
export const DEFAULT_CT_TIMEOUTS: Readonly<CtTimeouts> = {
  tcpSyn: 60,
  tcpEstablished: 21600,
  tcpFin: 10,
  tcpClose: 10,
  udp: 60,
};

/** SNAT source ports (inclusive): above Linux's default ephemeral range 32768-60999. */
export const DEFAULT_SNAT_PORTS = { min: 61000, max: 65535 } as const;

export const lbTcSpec = {
  file: 'lb_tc.bpf.o',
  maps: {
    ...lbMaps,
    ...maglevMaps,
    ct4: { key: Ct4Key, value: Ct4Entry },
    verdict_stats: { key: u32, value: VerdictCounter, perCpu: true, counters: true },
  },
  programs: ['lb_tc_ingress', 'lb_tc_egress'],
  rodata: {
    node_ipv4: be32,
    snat_port_min: u16,
    snat_port_max: u16,
    cluster_cidr_ipv4: be32,
    cluster_cidr_len: u8,
    ct_timeout_tcp_syn: u32,
    ct_timeout_tcp_established: u32,
    ct_timeout_tcp_fin: u32,
    ct_timeout_tcp_close: u32,
    ct_timeout_udp: u32,
    icmp_errors_per_sec: u32,
    lb_mode: u8,
    ...maglevRodataSpec,
  },
} as const satisfies ObjectSpec;

export interface LbTcConfig {
  /** The node's address: SNAT source, and a NodePort frontend address. Required for SNAT. */
  nodeIPv4: string;
  /** The pods' CIDR; ClusterIP traffic from outside it to another node is SNATed. */
  clusterCidr?: string;
  snatPorts?: { min: number; max: number };
  ctTimeouts?: Partial<CtTimeouts>;
  /**
   * ICMP errors the datapath may send per second (REJECT of services without endpoints), all
   * CPUs together; 0 drops instead. Default 1000, as the kernel's net.ipv4.icmp_msgs_per_sec.
   */
  icmpErrorsPerSec?: number;
  /** lb.mode: snat (default), dsr, or hybrid (DSR for TCP, SNAT for UDP); see dsr.h. */
  lbMode?: LbModeName;
}

/** A dotted quad as the number whose big-endian bytes are the address (be32 codec). */
export function ipv4ToNumber(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new SluiceError('CODEC', `lb_tc config: invalid IPv4 address '${address}'`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** Checks a config and turns it into LoadOptions.rodata for lbTcSpec (SluiceError CODEC). */
export function lbTcRodata(config: LbTcConfig): Record<string, number> {
  const snat = config.snatPorts ?? DEFAULT_SNAT_PORTS;
  if (!(Number.isInteger(snat.min) && Number.isInteger(snat.max) && snat.min >= 1)) {
    throw new SluiceError('CODEC', `lb_tc config: invalid SNAT port range ${snat.min}-${snat.max}`);
  }
  if (snat.min > snat.max || snat.max > 65535) {
    throw new SluiceError('CODEC', `lb_tc config: invalid SNAT port range ${snat.min}-${snat.max}`);
  }
  const t = { ...DEFAULT_CT_TIMEOUTS, ...config.ctTimeouts };
  for (const [name, seconds] of Object.entries(t)) {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) {
      throw new SluiceError('CODEC', `lb_tc config: invalid conntrack timeout ${name}: ${seconds}`);
    }
  }
  const icmpErrorsPerSec = config.icmpErrorsPerSec ?? 1000;
  if (
    !Number.isInteger(icmpErrorsPerSec) ||
    icmpErrorsPerSec < 0 ||
    icmpErrorsPerSec > 0xffffffff
  ) {
    throw new SluiceError('CODEC', `lb_tc config: invalid ICMP error rate ${icmpErrorsPerSec}`);
  }
  let cidrAddress = 0;
  let cidrLength = 0;
  if (config.clusterCidr !== undefined) {
    const [address = '', length = ''] = config.clusterCidr.split('/');
    cidrLength = Number(length);
    if (!Number.isInteger(cidrLength) || cidrLength < 1 || cidrLength > 32 || length === '') {
      throw new SluiceError('CODEC', `lb_tc config: invalid cluster CIDR '${config.clusterCidr}'`);
    }
    cidrAddress = ipv4ToNumber(address);
  }
  return {
    node_ipv4: ipv4ToNumber(config.nodeIPv4),
    snat_port_min: snat.min,
    snat_port_max: snat.max,
    cluster_cidr_ipv4: cidrAddress,
    cluster_cidr_len: cidrLength,
    ct_timeout_tcp_syn: t.tcpSyn,
    ct_timeout_tcp_established: t.tcpEstablished,
    ct_timeout_tcp_fin: t.tcpFin,
    ct_timeout_tcp_close: t.tcpClose,
    ct_timeout_udp: t.udp,
    icmp_errors_per_sec: icmpErrorsPerSec,
    lb_mode: LbMode[config.lbMode ?? 'snat'],
  };
}

/** Every verdict counter that is not zero, by name, summed over CPUs. */
export function readVerdicts(
  map: BpfMap<number, { packets: bigint; bytes: bigint }[]>,
): Record<string, { packets: bigint; bytes: bigint }> {
  const out: Record<string, { packets: bigint; bytes: bigint }> = {};
  for (let v = 0; v < VERDICT_SLOTS; v++) {
    const perCpu = map.lookup(v);
    if (!perCpu) continue;
    const sum = sumPerCpu(perCpu);
    if (sum.packets !== 0n) out[verdictName(v)] = sum;
  }
  return out;
}

const ctStateNames = new Map<number, string>(
  Object.entries(CtState).map(([name, value]) => [value, name]),
);
export function ctStateName(state: number): string {
  return ctStateNames.get(state) ?? `state_${state}`;
}

/** One tracked flow, as `sluice bpf ct list` shows it. */
export interface CtFlow {
  proto: 'tcp' | 'udp' | number;
  client: string;
  frontend: string;
  backend: string;
  /** The node address:port the backend sees, with SNAT. */
  snat?: string;
  /** Direct server return (dsr.h): the backend's node answers the client directly. */
  dsr?: true;
  state: string;
  seenReply: boolean;
  /** Seconds left (negative: dead, waiting for the LRU or garbage collection). */
  expiresInSec: number;
  revNatId: number;
  backendId: number;
}

/**
 * The flows of a ct4 map, one per flow (its FORWARD entry; a REPLY entry without one is listed
 * too), ordered by client. nowNs is CLOCK_MONOTONIC (process.hrtime.bigint()).
 */
export function readFlows(
  entries: Iterable<[Ct4KeyValue, Ct4EntryValue]>,
  nowNs: bigint = process.hrtime.bigint(),
): CtFlow[] {
  const byFlow = new Map<string, [Ct4KeyValue, Ct4EntryValue]>();
  for (const [k, e] of entries) {
    const id = `${k.proto} ${e.client_addr}:${e.client_port} ${e.frontend_addr}:${e.frontend_port}`;
    if (k.dir === CtDir.FORWARD || !byFlow.has(id)) byFlow.set(id, [k, e]);
  }
  const flows = [...byFlow.values()].map(([k, e]): CtFlow => {
    const snat = (e.flags & CtFlag.SNAT) !== 0;
    return {
      proto: k.proto === 6 ? 'tcp' : k.proto === 17 ? 'udp' : k.proto,
      client: `${e.client_addr}:${e.client_port}`,
      frontend: `${e.frontend_addr}:${e.frontend_port}`,
      backend: `${e.backend_addr}:${e.backend_port}`,
      ...(snat ? { snat: `${e.snat_addr}:${e.snat_port}` } : {}),
      ...((e.flags & CtFlag.DSR) !== 0 ? { dsr: true as const } : {}),
      state: ctStateName(e.state),
      seenReply: (e.flags & CtFlag.SEEN_REPLY) !== 0,
      expiresInSec: Number(e.expires_ns - nowNs) / 1e9,
      revNatId: e.rev_nat_id,
      backendId: e.backend_id,
    };
  });
  return flows.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
}
