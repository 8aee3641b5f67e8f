/**
 * Test support for the TC load balancer (lb-tc*.test.ts): a throwaway network namespace that
 * looks like a lab node to the FIB, a way to run BPF_PROG_TEST_RUN from inside it, and a
 * writer for the shared lb maps.
 *
 * BPF_PROG_TEST_RUN builds the skb on a device of the calling thread's network namespace (the
 * ctx's ifindex) and bpf_fib_lookup routes in that namespace, so runs happen with the main thread
 * switched into the test namespace by setns(2) and switched back at once. Nothing is created in
 * the root namespace: links are made by `ip -n NS`, and the namespace is deleted by destroy().
 * Packets are never sent: a test run does not carry out the redirects it reports.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';
import type { BpfObject, BpfProgram } from '../bpf/object.js';
import type { TestRunResult } from '../bpf/testrun.js';
import { testRun } from '../bpf/testrun.js';
import { IPPROTO, LbBackendFlag, LbScope } from './lb.js';
import type { lbTcSpec } from './lb-tc.js';

const CLONE_NEWNET = 0x40000000;
const libc = koffi.load('libc.so.6');
const setns = libc.func('int setns(int fd, int nstype)');

/**
 * A cost-measurement frame: Ethernet + IPv4 + TCP (20 bytes, no options) + 64 bytes of payload.
 * Checksums are not computed: the programs update them incrementally and never verify them.
 */
export function costTcpFrame(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  flags: number,
): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + 64);
  f.writeUInt16BE(0x0800, 12);
  const ip = f.subarray(14);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 20 + 64, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(IPPROTO.TCP, 9);
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  const t = ip.subarray(20);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  t.writeUInt8(5 << 4, 12);
  t.writeUInt8(flags, 13);
  return f;
}

/** Addresses and MACs of the test node, laid out like the lab's node 0 (lab/topology). */
export const NODE = '198.18.0.10';
export const NODE_B = '198.18.0.11';
export const CLIENT = '198.18.0.2';
export const ROUTER = '198.18.0.1';
/** This node's pods: the first has a resolved neighbour, the second not. */
export const POD = '198.18.16.5';
export const POD_UNRESOLVED = '198.18.16.6';
/** Pods of node B, routed via NODE_B. */
export const POD_B = '198.18.17.7';
export const POD_B2 = '198.18.17.8';
export const CLUSTER_CIDR = '198.18.16.0/20';
export const CLUSTER_IP = '198.19.0.10';
export const LB_IP = '198.19.128.10';

export const MAC = {
  fab0: '02:00:00:00:0a:0a',
  p1: '02:00:00:00:01:01',
  client: '02:00:00:00:00:c1',
  nodeB: '02:00:00:00:0b:0b',
  pod: '02:00:00:00:10:05',
  /** What the test frames carry before the program rewrites them. */
  frameSrc: '02:00:00:00:00:aa',
  frameDst: '02:00:00:00:00:bb',
} as const;

export interface LbTcNetns {
  name: string;
  ifindex: { fab0: number; p1: number };
  /** Runs fn with the calling thread inside the namespace. */
  run<T>(fn: () => T): T;
  /** testRun as if the packet arrived on (or left by) the device. */
  testRun(
    prog: BpfProgram,
    data: Buffer,
    opts?: { dev?: 'fab0' | 'p1'; repeat?: number },
  ): TestRunResult;
  destroy(): void;
}

let serial = 0;
let stuckIn = '';

function ipn(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { stdio: 'pipe' }).toString();
}

function ifindexOf(ns: string, dev: string): number {
  const [link] = JSON.parse(ipn(ns, '-j', 'link', 'show', 'dev', dev)) as { ifindex: number }[];
  if (!link) throw new Error(`no link ${dev} in ${ns}`);
  return link.ifindex;
}

/** struct __sk_buff with only ifindex set (offset 40 of 192 bytes). */
function skbContext(ifindex: number): Buffer {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(ifindex, 40);
  return ctx;
}

/**
 * A namespace with the routes a node has: the uplink fab0 (NODE/24, neighbours CLIENT and
 * NODE_B resolved), a pod veth p1 (POD with its neighbour, POD_UNRESOLVED without), node B's pod
 * CIDR via NODE_B, and forwarding on.
 */
export function createLbTcNetns(): LbTcNetns {
  const name = `sl-test-lbtc-${process.pid}-${serial++}`;
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  try {
    execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], {
      stdio: 'pipe',
    });
    ipn(name, 'link', 'set', 'lo', 'up');
    ipn(name, 'link', 'add', 'fab0', 'address', MAC.fab0, 'type', 'veth', 'peer', 'name', 'fabp');
    ipn(name, 'link', 'add', 'p1', 'address', MAC.p1, 'type', 'veth', 'peer', 'name', 'p1p');
    for (const dev of ['fab0', 'fabp', 'p1', 'p1p']) ipn(name, 'link', 'set', dev, 'up');
    ipn(name, 'addr', 'add', `${NODE}/24`, 'dev', 'fab0');
    ipn(name, 'route', 'add', `${POD}/32`, 'dev', 'p1');
    ipn(name, 'route', 'add', `${POD_UNRESOLVED}/32`, 'dev', 'p1');
    ipn(name, 'route', 'add', '198.18.17.0/24', 'via', NODE_B, 'dev', 'fab0');
    for (const [addr, mac, dev] of [
      [CLIENT, MAC.client, 'fab0'],
      [NODE_B, MAC.nodeB, 'fab0'],
      [POD, MAC.pod, 'p1'],
    ] as const) {
      ipn(name, 'neigh', 'replace', addr, 'lladdr', mac, 'dev', dev, 'nud', 'permanent');
    }
  } catch (error) {
    execFileSync('ip', ['netns', 'delete', name], { stdio: 'pipe' });
    throw error;
  }
  const ifindex = { fab0: ifindexOf(name, 'fab0'), p1: ifindexOf(name, 'p1') };

  const run = <T>(fn: () => T): T => {
    if (stuckIn)
      throw new Error(`setns back from ${stuckIn} failed earlier: the thread is inside it`);
    const home = openSync('/proc/thread-self/ns/net', 'r');
    const target = openSync(`/run/netns/${name}`, 'r');
    try {
      if ((setns(target, CLONE_NEWNET) as number) !== 0) throw new Error(`setns(${name}) failed`);
      try {
        return fn();
      } finally {
        // Staying inside would make every later test lie: remember it, later runs refuse.
        if ((setns(home, CLONE_NEWNET) as number) !== 0) stuckIn = name;
      }
    } finally {
      closeSync(target);
      closeSync(home);
    }
  };

  return {
    name,
    ifindex,
    run,
    testRun: (prog, data, opts = {}) =>
      run(() =>
        testRun(prog, {
          data,
          ctx: skbContext(ifindex[opts.dev ?? 'fab0']),
          ...(opts.repeat ? { repeat: opts.repeat } : {}),
        }),
      ),
    destroy: () => execFileSync('ip', ['netns', 'delete', name], { stdio: 'pipe' }),
  };
}

export interface ServiceSpec {
  serviceId: number;
  frontend: {
    address: string;
    port: number;
    proto?: 'tcp' | 'udp';
    scope?: 'external' | 'internal';
  };
  /** LbServiceFlag bits. */
  flags?: number;
  affinityTimeout?: number;
  backends: { id: number; address: string; port: number; local?: boolean }[];
  /** backend_count override (e.g. a slot that names a missing backend). */
  backendCount?: number;
}

type LbTcObject = BpfObject<typeof lbTcSpec.maps>;

/** Writes a service as the agent would: backends, then slots, then the frontend. */
export function programService(obj: LbTcObject, s: ServiceSpec): void {
  const proto = s.frontend.proto === 'udp' ? IPPROTO.UDP : IPPROTO.TCP;
  for (const b of s.backends) {
    obj.maps.lb4_backends.update(b.id, {
      address: b.address,
      port: b.port,
      proto,
      flags: b.local ? LbBackendFlag.LOCAL : 0,
      node_address: b.local ? NODE : NODE_B,
    });
  }
  s.backends.forEach((b, i) =>
    obj.maps.lb_slots.update({ service_id: s.serviceId, slot: i + 1 }, b.id),
  );
  obj.maps.lb4_reverse_nat.update(s.serviceId, {
    address: s.frontend.address,
    port: s.frontend.port,
  });
  obj.maps.lb4_services.update(
    {
      address: s.frontend.address,
      dport: s.frontend.port,
      proto,
      scope: s.frontend.scope === 'internal' ? LbScope.INTERNAL : LbScope.EXTERNAL,
    },
    {
      service_id: s.serviceId,
      rev_nat_id: s.serviceId,
      backend_count: s.backendCount ?? s.backends.length,
      flags: s.flags ?? 0,
      affinity_timeout: s.affinityTimeout ?? 0,
    },
  );
}

/** Empties every map the program reads or writes. */
export function clearMaps(obj: LbTcObject): void {
  for (const m of [
    'lb4_services',
    'lb_slots',
    'lb4_backends',
    'lb4_reverse_nat',
    'lb4_affinity',
    'ct4',
  ] as const) {
    obj.maps[m].clear();
  }
  for (let v = 0; v < 256; v++) obj.maps.verdict_stats.update(v, [{ packets: 0n, bytes: 0n }]);
}

export type CostCase = 'hit' | 'hit-snat' | 'miss' | 'ct-hit' | 'ct-hit-reply' | 'empty';

export interface CostResult {
  case: CostCase;
  /** Median over rounds of the mean kernel-measured ns per run. */
  nsPerPacket: number;
  runs: number;
}

/**
 * Per-packet cost of lb_tc_ingress by BPF_PROG_TEST_RUN, in ns/packet as the kernel measures
 * it. A test run with `repeat` reruns the program on the same skb, so a translated packet would
 * be seen translated from the second run on; every case is therefore timed one run per call,
 * on a fresh frame, and `empty` (a program that only returns) gives the floor that the timer
 * and the run itself add to each figure.
 * - hit: a new flow per packet (a fresh client port) to a local backend: service lookup,
 *   selection, two conntrack inserts, DNAT, FIB redirect; hit-snat: to a remote backend, + SNAT.
 * - miss: no flow, no frontend (a SYN: one conntrack lookup, two service lookups).
 * - ct-hit: an established flow's packet to the backend; ct-hit-reply: the backend's reply.
 */
export function measureLbTcCost(
  obj: LbTcObject,
  emptyProg: BpfProgram,
  netns: LbTcNetns,
  opts: { runs?: number; rounds?: number } = {},
): CostResult[] {
  // Below the 4536 ports of the default SNAT range: hit-snat makes `runs` flows to one backend.
  const runs = opts.runs ?? 2000;
  const rounds = opts.rounds ?? 3;
  const prog = obj.program('lb_tc_ingress');
  const SYN = 0x02;
  const ACK = 0x10;
  clearMaps(obj);
  programService(obj, {
    serviceId: 1,
    frontend: { address: NODE, port: 30080 },
    backends: [{ id: 11, address: POD, port: 8080, local: true }],
  });
  programService(obj, {
    serviceId: 3,
    frontend: { address: NODE, port: 30082 },
    backends: [{ id: 31, address: POD_B, port: 8080 }],
  });
  // A 1000-service table, so lookups do not run on an almost empty map.
  for (let i = 0; i < 1000; i++) {
    programService(obj, {
      serviceId: 1000 + i,
      frontend: { address: `198.19.${1 + (i >> 8)}.${i & 255}`, port: 80 },
      backends: [{ id: 10000 + i, address: POD_B2, port: 8080 }],
    });
  }
  const establish = () => {
    netns.testRun(prog, costTcpFrame(CLIENT, 50000, NODE, 30080, SYN));
    netns.testRun(prog, costTcpFrame(POD, 8080, CLIENT, 50000, SYN | ACK));
  };

  let port = 1024;
  const frames: Record<CostCase, () => Buffer> = {
    hit: () => costTcpFrame(CLIENT, port++, NODE, 30080, SYN),
    'hit-snat': () => costTcpFrame(ROUTER, port++, NODE, 30082, SYN),
    miss: () => costTcpFrame(CLIENT, 40000, NODE, 22, SYN),
    'ct-hit': () => costTcpFrame(CLIENT, 50000, NODE, 30080, ACK),
    'ct-hit-reply': () => costTcpFrame(POD, 8080, CLIENT, 50000, ACK),
    empty: () => costTcpFrame(CLIENT, 40000, NODE, 22, SYN),
  };
  const out: CostResult[] = [];
  for (const c of Object.keys(frames) as CostCase[]) {
    const p = c === 'empty' ? emptyProg : prog;
    const means: number[] = [];
    if (c === 'ct-hit') establish();
    for (let r = 0; r < rounds; r++) {
      if (c === 'hit' || c === 'hit-snat') port = 1024 + ((r * runs) % 60000);
      let total = 0;
      for (let i = 0; i < runs; i++) total += netns.testRun(p, frames[c]()).durationNs;
      means.push(total / runs);
      // New-flow rounds start from an empty conntrack, as a fresh node would.
      if (c === 'hit' || c === 'hit-snat') obj.maps.ct4.clear();
    }
    means.sort((a, b) => a - b);
    out.push({ case: c, nsPerPacket: means[Math.floor(means.length / 2)] ?? 0, runs });
  }
  return out;
}
