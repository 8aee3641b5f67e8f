/**
 * Scenario `flows`: what many concurrent tracked flows cost the TC load balancer, the seed's
 * "ten-million concurrency" concern. At 1k to 1M flows:
 *
 * - ct-hit-ns: ns/packet of lb_tc_ingress for a packet of an established flow (a conntrack hit),
 *   by BPF_PROG_TEST_RUN, for packets of flows picked at random among the N, so lookups land
 *   all over the table (cache misses included) instead of on one hot entry;
 * - map-mib: the memory the kernel charges for the conntrack map (ct4) sized for N flows, read
 *   from the map's fdinfo (`memlock`, the kernel's own accounting of the map).
 *
 * The table is primed through the real map: both entries of each flow (FORWARD and REPLY), as
 * the program itself would have written them for an external client of a NodePort with a local
 * backend, by batch updates. ct4 is an LRU hash sized 2.5 entries per flow so priming evicts
 * nothing; every measured packet is checked to be a conntrack hit (verdict CT_FORWARD), else the
 * run fails. One mode, sluice-tc: kube-proxy's conntrack (nf_conntrack) is not measured here,
 * because priming it with a million entries needs real flows or the conntrack tool, neither of
 * which the bench has; the figures are sluice's alone.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { BpfObject } from '../../bpf/object.js';
import { loadObject } from '../../bpf/object.js';
import {
  CtFlag,
  CtState,
  Ct4Entry,
  Ct4Key,
  lbTcRodata,
  lbTcSpec,
  Verdict,
} from '../../datapath/lb-tc.js';
import type { LbTcNetns } from '../../datapath/lb-tc-harness.js';
import {
  clearMaps,
  createLbTcNetns,
  NODE,
  POD,
  programService,
} from '../../datapath/lb-tc-harness.js';
import { IPPROTO } from '../../datapath/lb.js';
import { BenchError } from '../errors.js';
import type { MetricSpec, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';

export const METRICS: readonly MetricSpec[] = [
  { name: 'ct-hit-ns', unit: 'ns/packet', better: 'lower' },
  { name: 'map-mib', unit: 'MiB', better: 'lower' },
];
export const DEFAULT_FLOWS: readonly number[] = [1000, 10_000, 100_000, 1_000_000];
export const QUICK_FLOWS: readonly number[] = [1000, 10_000];
const SAMPLES = 20_000;
const QUICK_SAMPLES = 2000;
/** The NodePort the flows go to, served by POD:8080 on this node (no SNAT). */
const FRONTEND_PORT = 30080;
const BACKEND_PORT = 8080;
/** Clients: 198.18.64.0 and up, each with 60000 source ports. */
const CLIENT_BASE = (198 << 24) + (18 << 16) + (64 << 8);
const PORTS_PER_CLIENT = 60_000;
const CHUNK = 65_536;

export function clientOf(i: number): { address: string; port: number } {
  const v = CLIENT_BASE + Math.floor(i / PORTS_PER_CLIENT);
  return {
    address: [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.'),
    port: 1024 + (i % PORTS_PER_CLIENT),
  };
}

type LbTcObject = BpfObject<typeof lbTcSpec.maps>;

/** Writes both conntrack entries of flows 0..n-1, established, expiring in six hours. */
export function primeFlows(obj: LbTcObject, n: number): void {
  const expires = process.hrtime.bigint() + 6n * 3600n * 1_000_000_000n; // CLOCK_MONOTONIC
  const ks = Ct4Key.size;
  const vs = Ct4Entry.size;
  for (let start = 0; start < n; start += CHUNK) {
    const count = Math.min(CHUNK, n - start);
    const keys = Buffer.alloc(2 * count * ks);
    const values = Buffer.alloc(2 * count * vs);
    for (let j = 0; j < count; j++) {
      const c = clientOf(start + j);
      const entry = {
        expires_ns: expires,
        created_ns: 0n,
        client_addr: c.address,
        frontend_addr: NODE,
        backend_addr: POD,
        snat_addr: c.address,
        client_port: c.port,
        frontend_port: FRONTEND_PORT,
        backend_port: BACKEND_PORT,
        snat_port: c.port,
        rev_nat_id: 1,
        backend_id: 11,
        state: CtState.ESTABLISHED,
        flags: CtFlag.SEEN_REPLY,
      };
      const forward = {
        saddr: c.address,
        daddr: NODE,
        sport: c.port,
        dport: FRONTEND_PORT,
        proto: IPPROTO.TCP,
        dir: 0,
      };
      const reply = {
        saddr: POD,
        daddr: c.address,
        sport: BACKEND_PORT,
        dport: c.port,
        proto: IPPROTO.TCP,
        dir: 1,
      };
      Ct4Key.encode(forward, keys, 2 * j * ks);
      Ct4Key.encode(reply, keys, (2 * j + 1) * ks);
      Ct4Entry.encode(entry, values, 2 * j * vs);
      Ct4Entry.encode(entry, values, (2 * j + 1) * vs);
    }
    const written = obj.maps.ct4.updateBatchRaw(keys, values, 2 * count);
    if (written !== 2 * count) {
      throw new BenchError(`flows: ct4 took ${written} of ${2 * count} entries`);
    }
  }
}

/** The kernel's memory accounting of a map (fdinfo `memlock`), in bytes. */
export function mapMemlock(fd: number): number {
  const text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /^memlock:\s*(\d+)/m.exec(text);
  if (!m) throw new BenchError(`flows: no memlock in /proc/self/fdinfo/${fd}`);
  return Number(m[1]);
}

/** An ACK of flow i to the frontend: Ethernet + IPv4 + TCP + 64 bytes. */
function ackFrame(i: number): Buffer {
  const c = clientOf(i);
  const f = Buffer.alloc(14 + 20 + 20 + 64);
  f.writeUInt16BE(0x0800, 12);
  const ip = f.subarray(14);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 20 + 64, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(IPPROTO.TCP, 9);
  Buffer.from(c.address.split('.').map(Number)).copy(ip, 12);
  Buffer.from(NODE.split('.').map(Number)).copy(ip, 16);
  const t = ip.subarray(20);
  t.writeUInt16BE(c.port, 0);
  t.writeUInt16BE(FRONTEND_PORT, 2);
  t.writeUInt8(5 << 4, 12);
  t.writeUInt8(0x10, 13); // ACK
  return f;
}

/** A deterministic sequence of flow indices (xorshift), the same in every run and mode. */
function* randomFlows(n: number, count: number, seed: number): Generator<number> {
  let x = seed | 1;
  for (let k = 0; k < count; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield (x >>> 0) % n;
  }
}

function ctForwardHits(obj: LbTcObject): bigint {
  const perCpu = obj.maps.verdict_stats.lookup(Verdict.CT_FORWARD) ?? [];
  return perCpu.reduce((n, c) => n + c.packets, 0n);
}

interface Loaded {
  ns: LbTcNetns;
  obj: LbTcObject;
}

function planFor(flows: number, samples: number, cpu: number | undefined): ScenarioPlan {
  let loaded: Loaded | undefined;
  let runNo = 0;
  return {
    params: { flows },
    notes: {
      [NOTE.generatorCpus]: 'none (BPF_PROG_TEST_RUN on the bench thread)',
      [NOTE.measuredCpus]: cpu === undefined ? 'not pinned' : String(cpu),
      'ct4-max-entries': Math.ceil(flows * 2.5),
    },
    setup(ctx) {
      const ns = createLbTcNetns();
      try {
        const obj = loadObject(lbTcSpec, {
          rodata: lbTcRodata({ nodeIPv4: NODE }),
          maxEntries: { ct4: Math.ceil(flows * 2.5) },
        });
        loaded = { ns, obj };
        clearMaps(obj);
        programService(obj, {
          serviceId: 1,
          frontend: { address: NODE, port: FRONTEND_PORT },
          backends: [{ id: 11, address: POD, port: BACKEND_PORT, local: true }],
        });
        ctx.progress(`[flows flows=${flows}] priming ct4... `);
        const t = performance.now();
        primeFlows(obj, flows);
        ctx.progress(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
      } catch (error) {
        loaded?.obj.close();
        ns.destroy();
        loaded = undefined;
        throw error;
      }
      return Promise.resolve();
    },
    async run() {
      if (!loaded) throw new Error('flows: run before setup');
      const { ns, obj } = loaded;
      const prog = obj.program('lb_tc_ingress');
      const before = ctForwardHits(obj);
      let total = 0;
      let k = 0;
      for (const i of randomFlows(flows, samples, 0x9e3779b9 + runNo++)) {
        total += ns.testRun(prog, ackFrame(i)).durationNs;
        // Let Ctrl-C in now and then.
        if (++k % 4096 === 0) await new Promise((r) => setImmediate(r));
      }
      const hits = ctForwardHits(obj) - before;
      if (hits !== BigInt(samples)) {
        throw new BenchError(
          `flows: ${hits} of ${samples} packets were conntrack hits (ct4 evicted primed flows?)`,
        );
      }
      return {
        'ct-hit-ns': total / samples,
        'map-mib': mapMemlock(obj.maps.ct4.fd) / 2 ** 20,
      };
    },
    teardown() {
      loaded?.obj.close();
      loaded?.ns.destroy();
      loaded = undefined;
      return Promise.resolve();
    },
  };
}

export const flowsScenario: Scenario = {
  name: 'flows',
  modes: ['sluice-tc'],
  metrics: METRICS,
  plan({ quick, cpu }: ScenarioOptions) {
    if (cpu !== undefined) pinMain(cpu);
    return (quick ? QUICK_FLOWS : DEFAULT_FLOWS).map((n) =>
      planFor(n, quick ? QUICK_SAMPLES : SAMPLES, cpu),
    );
  },
};

/** taskset -p changes the main thread only: the one that makes the bpf() calls. */
function pinMain(cpu: number): void {
  execFileSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}
