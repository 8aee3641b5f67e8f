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
 * run fails.
 *
 * Mode iptables, the kube-proxy baseline: the kernel's conntrack (nf_conntrack) inside the node
 * namespace of a one-node iptables lab, primed with the same N flows (client to the node's
 * NodePort, DNATed to a local backend, ESTABLISHED and ASSURED) by `conntrack -R` (Debian's
 * conntrack tool, netlink inserts in one batch). It reports map-mib only: nf_conntrack_count of
 * the namespace times the object size of the nf_conntrack slab, the kernel memory of the entries
 * themselves (their extensions, a few dozen bytes each in kmalloc caches, and the conntrack hash
 * table, nf_conntrack_buckets pointers allocated once for the whole host, are not in it). It
 * reports no ct-hit-ns: nf_conntrack's lookup runs in the netfilter hooks of a real packet, which
 * BPF_PROG_TEST_RUN never passes through, and no per-packet figure taken another way (CPU time
 * of real traffic) would measure the same thing as sluice's; the iptables rows leave it out
 * rather than print a number that only looks comparable. nf_conntrack_max (a host-wide sysctl,
 * read-only in a lab namespace) bounds the entries a namespace holds: flow counts above it run
 * sluice-tc only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  costTcpFrame,
  createLbTcNetns,
  NODE,
  POD,
  programService,
} from '../../datapath/lb-tc-harness.js';
import { IPPROTO } from '../../datapath/lb.js';
import { BenchError } from '../errors.js';
import type { BenchLab } from '../lab/single-node.js';
import { backendPods, downBenchLab, upBenchLab } from '../lab/single-node.js';
import type { MetricSpec, Samples, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';
import { benchLabName } from '../lab/names.js';

export const MODES = ['iptables', 'sluice-tc'] as const;

export const METRICS: readonly MetricSpec[] = [
  // No comparable per-packet figure exists for nf_conntrack (see above).
  { name: 'ct-hit-ns', unit: 'ns/packet', better: 'lower', modes: ['sluice-tc'] },
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
  return costTcpFrame(c.address, c.port, NODE, FRONTEND_PORT, 0x10 /* ACK */);
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

/** The most conntrack entries a namespace may hold (net.netfilter.nf_conntrack_max). */
export function conntrackMax(): number {
  return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'));
}

/** The object size of the kernel's nf_conntrack slab cache (/proc/slabinfo), in bytes. */
export function conntrackObjectSize(): number {
  const line = readFileSync('/proc/slabinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nf_conntrack '));
  const size = Number(line?.trim().split(/\s+/)[3]);
  if (!line || !Number.isInteger(size) || size <= 0) {
    throw new BenchError(
      'flows: /proc/slabinfo has no nf_conntrack cache (is nf_conntrack loaded?)',
    );
  }
  return size;
}

/** nf_conntrack_count of a namespace: the entries its conntrack table holds. */
function conntrackCount(netns: string): number {
  const out = execFileSync('ip', [
    'netns',
    'exec',
    netns,
    'cat',
    '/proc/sys/net/netfilter/nf_conntrack_count',
  ]);
  return Number(out.toString().trim());
}

/**
 * `conntrack -R` lines for flows start..start+count-1: the entries kube-proxy's DNAT leaves for
 * an external client of a NodePort with a local backend, once the flow is established.
 */
export function conntrackLines(start: number, count: number, node: string, pod: string): string {
  const lines: string[] = [];
  for (let i = start; i < start + count; i++) {
    const c = clientOf(i);
    lines.push(
      `-I -p tcp -s ${c.address} -d ${node} --sport ${c.port} --dport ${FRONTEND_PORT} ` +
        `-r ${pod} -q ${c.address} --reply-port-src ${BACKEND_PORT} --reply-port-dst ${c.port} ` +
        '--state ESTABLISHED -t 21600 -u ASSURED,SEEN_REPLY',
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Inserts the N flows into the conntrack table of `netns` with one `conntrack -R FILE` (a file:
 * conntrack cannot open a socket stdin, which Node's child pipes are).
 */
async function primeConntrack(
  netns: string,
  dir: string,
  n: number,
  node: string,
  pod: string,
): Promise<void> {
  const file = join(dir, 'conntrack-flows');
  writeFileSync(file, '');
  for (let start = 0; start < n; start += CHUNK) {
    appendFileSync(file, conntrackLines(start, Math.min(CHUNK, n - start), node, pod));
  }
  try {
    const child = spawn('ip', ['netns', 'exec', netns, 'conntrack', '-R', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new BenchError(`flows: conntrack -R exited ${code}: ${stderr.trim()}`);
  } finally {
    rmSync(file, { force: true });
  }
  const count = conntrackCount(netns);
  if (count < n) {
    throw new BenchError(`flows: the conntrack table of ${netns} holds ${count} of ${n} flows`);
  }
}

interface ConntrackLab {
  lab: BenchLab;
  netns: string;
}

/** A one-node iptables lab whose node's conntrack holds the N flows. */
async function upConntrackLab(n: number): Promise<ConntrackLab> {
  const lab = await upBenchLab({ proxy: 'iptables', labName: benchLabName('fl'), replicas: 1 });
  try {
    const node = lab.lab.topology.nodes()[0];
    const podKey = backendPods(lab)[0];
    const pod = podKey === undefined ? undefined : lab.lab.state.pods.get(podKey);
    if (!node || !pod) throw new BenchError('flows: the iptables lab has no node or backend');
    await primeConntrack(node.netns, lab.dir, n, node.ip, pod.ip);
    return { lab, netns: node.netns };
  } catch (error) {
    await downBenchLab(lab).catch(() => undefined);
    throw error;
  }
}

interface Loaded {
  ns: LbTcNetns;
  obj: LbTcObject;
}

function planFor(flows: number, samples: number, cpu: number | undefined): ScenarioPlan {
  let loaded: Loaded | undefined;
  let ct: ConntrackLab | undefined;
  let runNo = 0;
  const ctMax = conntrackMax();
  const withIptables = flows <= ctMax;
  return {
    params: { flows },
    modes: withIptables ? MODES : ['sluice-tc'],
    notes: {
      [NOTE.generatorCpus]: 'none (BPF_PROG_TEST_RUN on the bench thread)',
      [NOTE.measuredCpus]: cpu === undefined ? 'not pinned' : String(cpu),
      'ct4-max-entries': Math.ceil(flows * 2.5),
      'iptables-map-mib':
        'nf_conntrack_count x nf_conntrack slab object size; no per-packet lookup figure',
      ...(withIptables ? {} : { 'iptables-skipped': `flows > nf_conntrack_max (${ctMax})` }),
    },
    async setup(ctx) {
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
      if (withIptables) {
        ctx.progress(`[flows flows=${flows}] iptables lab, priming nf_conntrack... `);
        const t = performance.now();
        ct = await upConntrackLab(flows);
        ctx.progress(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
        ctx.note('nf-conntrack-object-bytes', conntrackObjectSize());
      }
    },
    async run(mode): Promise<Samples> {
      if (mode === 'iptables') {
        if (!ct) throw new Error('flows: iptables run before setup');
        const count = conntrackCount(ct.netns);
        if (count < flows) {
          throw new BenchError(
            `flows: nf_conntrack of ${ct.netns} lost flows: ${count} of ${flows}`,
          );
        }
        return { 'map-mib': (count * conntrackObjectSize()) / 2 ** 20 };
      }
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
    async teardown() {
      loaded?.obj.close();
      loaded?.ns.destroy();
      loaded = undefined;
      const lab = ct?.lab;
      ct = undefined;
      if (lab) await downBenchLab(lab);
    },
  };
}

export const flowsScenario: Scenario = {
  name: 'flows',
  modes: MODES,
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
