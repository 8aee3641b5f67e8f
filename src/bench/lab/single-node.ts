/**
 * A one-node lab for the scale, memory and churn scenarios: the measured service with echo
 * backends and a client pod, all on node-0, so one proxy (one agent, one iptables/nft program)
 * serves the whole path. One node also keeps iptables honest: the lab syncs iptables nodes one
 * at a time (the xtables lock is host-wide here, per node in a real cluster), which a second
 * node would add to every change. Helpers read what the agent costs: its RSS and the kernel
 * memory of the BPF maps it holds.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfigOverrides } from '../../lab/agents.js';
import { liveAgent } from '../../lab/agents.js';
import { Lab } from '../../lab/lab.js';
import type { ProxyMode } from '../../lab/proxy.js';
import type { ObjectKey } from '../../model/index.js';
import { objectKey } from '../../model/index.js';
import { BenchError } from '../errors.js';
import { fillerManifests, toYaml } from './fleet.js';

export const NODE = 'node-0';
export const SERVICE = { name: 'target', port: 7000 } as const;
export const CLIENT = 'default/client';

export const CONNECT_BENCH = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../native/.output/connect_bench',
);

export const CHURN_CLIENT = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../native/.output/churn_client',
);

export function requireConnectBench(): void {
  if (!existsSync(CONNECT_BENCH)) {
    throw new BenchError(`${CONNECT_BENCH} does not exist: build it with 'make -C native'`);
  }
}

export function requireChurnClient(): void {
  if (!existsSync(CHURN_CLIENT)) {
    throw new BenchError(`${CHURN_CLIENT} does not exist: build it with 'make -C native'`);
  }
}

/** The service, `replicas` echo backends and the client, all on node-0. */
export function serviceManifests(replicas: number): object[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: SERVICE.name },
      spec: {
        replicas,
        selector: { matchLabels: { app: SERVICE.name } },
        template: {
          metadata: { labels: { app: SERVICE.name } },
          spec: {
            nodeName: NODE,
            containers: [
              {
                name: 'echo',
                image: 'sluice/echo',
                ports: [{ name: 'tcp', containerPort: SERVICE.port }],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: SERVICE.name },
      spec: {
        selector: { app: SERVICE.name },
        ports: [{ name: 'tcp', port: SERVICE.port, targetPort: 'tcp' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client' },
      spec: { nodeName: NODE, containers: [{ name: 'client', image: 'sluice/echo' }] },
    },
  ];
}

/** Services the agent's default map sizes hold (bpf/include/lb.h LB_MAP_SIZE, with margin). */
export const DEFAULT_MAP_SERVICES = 60_000;

/**
 * Agent config for a lab of `services` services of `endpoints` endpoints: beyond the default map
 * sizes, the lb maps are sized for them (as an operator would in the agent's config), so 100k
 * services fit. Undefined when the defaults do.
 */
export function agentConfigFor(services: number, endpoints = 10): AgentConfigOverrides | undefined {
  if (services <= DEFAULT_MAP_SERVICES) return undefined;
  const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));
  const frontends = pow2(services * 1.25);
  const slots = pow2(services * endpoints * 1.25);
  return {
    maps: {
      maxEntries: {
        lb4_services: frontends,
        lb4_reverse_nat: frontends,
        lb_slots: slots,
        lb4_backends: slots,
      },
    },
  };
}

export interface BenchLab {
  readonly lab: Lab;
  readonly stateDir: string;
  readonly labName: string;
  /** A scratch directory for manifests, removed with the lab. */
  readonly dir: string;
}

export interface BenchLabOptions {
  proxy: ProxyMode;
  /** 1-12 of [a-z0-9]: the lab's objects are sl-<labName>-*. */
  labName: string;
  replicas: number;
  /** Filler services present from the start. */
  fillers?: number;
  agentConfig?: AgentConfigOverrides;
}

/**
 * Brings a one-node lab up; on failure removes whatever it made. An iptables lab is tried again
 * (twice at most) when another program on the machine held the host-wide xtables lock longer
 * than kube-proxy's 5 s wait: on a shared machine that is someone else's restore, not the lab.
 */
export async function upBenchLab(o: BenchLabOptions): Promise<BenchLab> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await upBenchLabOnce(o);
    } catch (error) {
      const locked = error instanceof Error && error.message.includes('xtables lock');
      if (!locked || attempt >= 3) throw error;
    }
  }
}

async function upBenchLabOnce(o: BenchLabOptions): Promise<BenchLab> {
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-manifests-'));
  try {
    const manifest = join(dir, 'service.yaml');
    writeFileSync(
      manifest,
      toYaml([...serviceManifests(o.replicas), ...fillerManifests(o.fillers ?? 0)]),
    );
    const lab = await Lab.up({
      files: [manifest],
      nodes: 1,
      proxy: o.proxy,
      stateDir,
      labName: o.labName,
      // Debian's default nft backend needs minutes to hours at 10k services (DESIGN.md).
      ...(o.proxy === 'iptables' ? { iptablesBackend: 'legacy' as const } : {}),
      ...(o.agentConfig ? { agentConfig: o.agentConfig } : {}),
    });
    // The client closes first and keeps TIME_WAIT: let it reuse ports, from a wide range.
    await lab.topology.execInPod(CLIENT, [
      'sysctl',
      '-qw',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=1024 65000',
    ]);
    return { lab, stateDir, labName: o.labName, dir };
  } catch (error) {
    await Lab.down(stateDir, o.labName).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export async function downBenchLab(l: BenchLab): Promise<void> {
  try {
    await Lab.down(l.stateDir, l.labName);
  } finally {
    rmSync(l.stateDir, { recursive: true, force: true });
    rmSync(l.dir, { recursive: true, force: true });
  }
}

/** Takes every lab down, even when one fails (then throws the first failure, after all). */
export async function downBenchLabs(labs: Iterable<BenchLab>): Promise<void> {
  const errors: unknown[] = [];
  for (const l of labs) {
    try {
      await downBenchLab(l);
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/** Writes `count` filler services to a manifest file in the lab's scratch directory. */
export function writeFillers(l: BenchLab, count: number): string {
  const path = join(l.dir, `fillers-${count}.yaml`);
  if (!existsSync(path)) writeFileSync(path, toYaml(fillerManifests(count)));
  return path;
}

export function clusterIP(l: BenchLab): string {
  const service = l.lab.state.services.get(objectKey('default', SERVICE.name));
  if (!service) throw new BenchError(`the ${SERVICE.name} service is missing from the lab`);
  return service.clusterIP;
}

/** The service's backend pods, by key. */
export function backendPods(l: BenchLab): ObjectKey[] {
  return [...l.lab.state.pods.values()]
    .filter((p) => p.labels.app === SERVICE.name)
    .map((p) => objectKey(p.namespace, p.name));
}

export interface ConnectResult {
  connections: number;
  errors: number;
  rate: number;
  p50_us: number;
  p99_us: number;
}

/** native connect_bench in the client pod against the service's ClusterIP. */
export async function connectBench(
  l: BenchLab,
  seconds: number,
  concurrency = 1,
): Promise<ConnectResult> {
  const r = await l.lab.topology.execInPod(
    CLIENT,
    [CONNECT_BENCH, clusterIP(l), String(SERVICE.port), String(seconds), String(concurrency)],
    { timeoutMs: seconds * 1000 + 10_000 },
  );
  try {
    return JSON.parse(r.stdout) as ConnectResult;
  } catch {
    throw new BenchError(`connect_bench printed an unexpected result: ${r.stdout.trim()}`);
  }
}

/** The pid of node-0's sluice agent. */
export function agentPid(l: BenchLab): number {
  const agent = liveAgent(l.lab.topology, NODE);
  if (!agent) throw new BenchError(`the sluice agent of ${NODE} is not running`);
  return agent.pid;
}

/** VmRSS and VmHWM (peak) of a process, MiB. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(status);
    if (!m) throw new BenchError(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]);
  };
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/**
 * The kernel memory of every BPF map a process holds open, MiB: fdinfo's `memlock` (the
 * kernel's own accounting, bpf_map_memory_usage), each map counted once by its map_id.
 */
export function mapsMiB(pid: number): { mib: number; maps: number } {
  const seen = new Set<string>();
  let bytes = 0;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const id = /^map_id:\s*(\d+)/m.exec(text)?.[1];
    const memlock = /^memlock:\s*(\d+)/m.exec(text)?.[1];
    if (id === undefined || memlock === undefined || seen.has(id)) continue;
    seen.add(id);
    bytes += Number(memlock);
  }
  return { mib: bytes / 2 ** 20, maps: seen.size };
}

/** How the exchanges of native/churn_client ended (see churn_client.c). */
export interface ChurnClientResult {
  requests: number;
  ok: number;
  connect_errors: number;
  resets: number;
  timeouts: number;
  wrong_answers: number;
}

/**
 * native churn_client in the client pod against the service's ClusterIP: `seconds` of new
 * exchanges, then those in flight are waited for; an answer from anything but `names` (the
 * backends' pod names) is a wrong answer.
 */
export async function churnClient(
  l: BenchLab,
  o: { seconds: number; concurrency: number; timeoutMs: number; names: readonly string[] },
): Promise<ChurnClientResult> {
  const r = await l.lab.topology.execInPod(
    CLIENT,
    [
      CHURN_CLIENT,
      clusterIP(l),
      String(SERVICE.port),
      String(o.seconds),
      String(o.concurrency),
      String(o.timeoutMs),
      o.names.join(','),
    ],
    { timeoutMs: o.seconds * 1000 + o.timeoutMs + 10_000 },
  );
  try {
    return JSON.parse(r.stdout) as ChurnClientResult;
  } catch {
    throw new BenchError(`churn_client printed an unexpected result: ${r.stdout.trim()}`);
  }
}
