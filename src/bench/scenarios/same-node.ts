/**
 * What the `latency` and `throughput` scenarios share: one TCP client talking to one server pod
 * on the same node, pod to pod or pod to ClusterIP to pod, in each mode side by side.
 *
 *   loopback        client and server in one namespace over 127.0.0.1: the reference
 *                   (both run in the client pod of the iptables lab, which has no BPF attached)
 *   iptables        kube-proxy's iptables mode (lab sl-<x>i-*)
 *   sluice-socket   the sluice agent as it runs by default: ClusterIP translated at connect(),
 *                   every byte through the stack (lab sl-<x>s-*)
 *   sluice-sockmap  the same agent with `socketAcceleration: { enabled: true }` and the pods'
 *                   Namespace annotated `sluice.io/accelerate: "true"` (lab sl-<x>m-*)
 *
 * Every lab gets the same manifest (the annotation included), so the only difference between
 * sluice-socket and sluice-sockmap is the agent config. The server is the backend pod's command
 * (`sluice.io/command`); the client runs in the client pod's namespace and cgroup (so it gets
 * socket LB) on the same node. Both are pinned with taskset: `cpus: same` puts them on one CPU,
 * `cpus: split` on two; the server is re-pinned before each run (taskset -p), so one set of labs
 * serves every parameter set. The CPUs are recorded in the params (`client-cpu`, `server-cpu`).
 *
 * Each run also counts the packets that left the client pod's eth0: redirected bytes never
 * become packets, so a sluice-sockmap run that sent many was not redirected, and is refused
 * (redirectProblem) instead of being reported as the accelerated path, unless the agent's
 * counters show the connection fell back to the stack (backpressure against a reader that fell
 * too far behind): such a run is kept, counted in the note runs-fell-back-to-stack.
 *
 * The labs are brought up by the first plan and kept for the following ones; the last plan's
 * teardown (or any plan's after a failure or Ctrl-C) removes them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveConfig } from '../../agent/config.js';
import { readSockmapStats } from '../../datapath/sock-redirect.js';
import { agentPinRoot } from '../../lab/agents.js';
import { Lab } from '../../lab/lab.js';
import type { ProxyMode } from '../../lab/proxy.js';
import { waitListening } from '../../lab/workloads/index.js';
import { objectKey } from '../../model/index.js';
import { BenchError } from '../errors.js';
import { toYaml } from '../lab/fleet.js';
import type { Params } from '../results.js';
import type {
  MetricSpec,
  RunContext,
  Samples,
  Scenario,
  ScenarioOptions,
  ScenarioPlan,
} from '../runner.js';
import { benchLabName } from '../lab/names.js';

const execFileAsync = promisify(execFile);

export const MODES = ['loopback', 'iptables', 'sluice-socket', 'sluice-sockmap'] as const;
export type Mode = (typeof MODES)[number];
type LabMode = Exclude<Mode, 'loopback'>;
const LAB_MODES: readonly LabMode[] = ['iptables', 'sluice-socket', 'sluice-sockmap'];

export type Cpus = 'same' | 'split';
export type Path = 'pod' | 'clusterip';

export const NAMESPACE = 'bench';
export const SERVER_POD = `${NAMESPACE}/server`;
export const CLIENT_POD = `${NAMESPACE}/client`;
const NODE = 'node-0';

/** The agent config that turns socket redirect on (issue 11). */
export const SOCKMAP_CONFIG = { socketAcceleration: { enabled: true } } as const;
export const ACCELERATE_ANNOTATION = 'sluice.io/accelerate';

/**
 * Why sluice-sockmap cannot run with this build's agent, or undefined when it can: the agent's
 * own config validation must accept `socketAcceleration.enabled: true` and keep it.
 */
export function sockmapUnavailable(): string | undefined {
  let resolved: unknown;
  try {
    resolved = resolveConfig({ ...SOCKMAP_CONFIG, socketLB: { cgroupPath: '/probe' } }, 'probe');
  } catch (error) {
    const first = (error as Error).message.split('\n')[0] ?? '';
    return `this agent's config refuses socketAcceleration (${first})`;
  }
  const acc = (resolved as { socketAcceleration?: { enabled?: unknown } }).socketAcceleration;
  if (acc?.enabled !== true) return "this agent's config has no socketAcceleration.enabled";
  return undefined;
}

/** What one scenario measures: the server it runs in the backend pod and one client run. */
export interface Workload {
  /** The scenario name; also the prefix of the lab names (<= 3 characters used). */
  readonly scenario: 'latency' | 'throughput';
  readonly labPrefix: string;
  readonly metrics: readonly MetricSpec[];
  readonly port: number;
  /** Recorded with every row (e.g. the message size). */
  readonly params: Params;
  /** The server's argv, listening on `address`. */
  serverArgv(address: string): string[];
  /** The client's argv against ip:port for `seconds`, and how to read its stdout. */
  clientArgv(ip: string, port: number, seconds: number): string[];
  parse(stdout: string): Samples;
  /** Seconds per client run. */
  readonly seconds: { readonly full: number; readonly quick: number };
}

/** One CPU placement: where the server and the client are pinned. */
export interface Placement {
  readonly cpus: Cpus;
  readonly serverCpu: number;
  readonly clientCpu: number;
}

/**
 * The placements to measure on a machine with `cpuCount` CPUs: the server on `cpu` (default the
 * last CPU, away from CPU 0 where most housekeeping lands), the client beside it or on the next
 * CPU. One CPU only: no split placement.
 */
export function placements(cpuCount: number, cpu?: number): Placement[] {
  const server = cpu ?? cpuCount - 1;
  const out: Placement[] = [{ cpus: 'same', serverCpu: server, clientCpu: server }];
  if (cpuCount > 1)
    out.push({ cpus: 'split', serverCpu: server, clientCpu: (server + 1) % cpuCount });
  return out;
}

/** The plans' params, in run order. */
export function planParams(
  placement: Placement,
  path: Path,
  seconds: number,
  extra: Params,
): Params {
  return {
    cpus: placement.cpus,
    path,
    'client-cpu': placement.clientCpu,
    'server-cpu': placement.serverCpu,
    seconds,
    ...extra,
  };
}

/** The manifest every lab of the scenario runs: the annotated namespace, server, service, client. */
export function manifests(w: Workload): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE, annotations: { [ACCELERATE_ANNOTATION]: 'true' } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'server',
        namespace: NAMESPACE,
        labels: { app: 'server' },
        annotations: { 'sluice.io/command': w.serverArgv('0.0.0.0').join(' ') },
      },
      spec: {
        nodeName: NODE,
        containers: [
          {
            name: 'server',
            image: 'sluice/bench',
            ports: [{ name: 'tcp', containerPort: w.port }],
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'server', namespace: NAMESPACE },
      spec: {
        selector: { app: 'server' },
        ports: [{ name: 'tcp', port: w.port, targetPort: 'tcp' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client', namespace: NAMESPACE },
      // No ports: the lab runs nothing in it; the bench runs the client there.
      spec: { nodeName: NODE, containers: [{ name: 'client', image: 'sluice/bench' }] },
    },
  ];
}

interface ModeLab {
  lab: Lab;
  stateDir: string;
  labName: string;
}

/**
 * agentConfig is a plain object, not AgentConfigOverrides: socketAcceleration may be newer than
 * this build's typed config (sockmapUnavailable() then keeps the mode from running at all).
 */
const LAB_KIND: Record<LabMode, { proxy: ProxyMode; suffix: string; agentConfig?: object }> = {
  iptables: { proxy: 'iptables', suffix: 'i' },
  'sluice-socket': { proxy: 'sluice', suffix: 's' },
  'sluice-sockmap': { proxy: 'sluice', suffix: 'm', agentConfig: SOCKMAP_CONFIG },
};

async function upLab(mode: LabMode, prefix: string, manifest: string): Promise<ModeLab> {
  const kind = LAB_KIND[mode];
  const labName = benchLabName(`${prefix}${kind.suffix}`);
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  try {
    const lab = await Lab.up({
      files: [manifest],
      nodes: 1,
      proxy: kind.proxy,
      stateDir,
      labName,
      ...(kind.agentConfig ? { agentConfig: kind.agentConfig } : {}),
    });
    return { lab, stateDir, labName };
  } catch (error) {
    await Lab.down(stateDir, labName).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}

async function downLab(l: ModeLab): Promise<void> {
  await Lab.down(l.stateDir, l.labName);
  rmSync(l.stateDir, { recursive: true, force: true });
}

/** Packets the client pod has sent out of its eth0 (the kernel's counter, read inside the pod). */
async function txPackets(lab: Lab): Promise<number> {
  const { stdout } = await lab.topology.execInPod(CLIENT_POD, [
    'cat',
    '/sys/class/net/eth0/statistics/tx_packets',
  ]);
  const n = Number(stdout.trim());
  if (!Number.isSafeInteger(n))
    throw new BenchError(`eth0 tx_packets of ${CLIENT_POD}: '${stdout.trim()}'`);
  return n;
}

/**
 * Redirected bytes never become packets: with socket redirect only the handshakes and closes
 * (a few packets per connection) leave the client pod, against at least one packet per request
 * through the stack. More than this many in a sluice-sockmap run means the numbers are not of
 * the redirect path, and they are refused rather than reported under its name.
 */
export const MAX_REDIRECTED_PACKETS = 1000;

/**
 * Why a run's packet count contradicts its mode, or undefined. `fellBack` is how many sockets the
 * datapath moved from redirect to the stack during the run (backpressure: the reader fell too
 * far behind, docs/socket-acceleration.md): then the packets are the stack's share of a run
 * that was redirected until the switch, which is what an accelerated pod gets, not a
 * misconfiguration.
 */
export function redirectProblem(mode: Mode, packets: number, fellBack = 0): string | undefined {
  if (mode === 'sluice-sockmap' && packets > MAX_REDIRECTED_PACKETS && fellBack === 0) {
    return (
      `${packets} packets left the client pod's eth0 during the run: the connection was not ` +
      `redirected (socketAcceleration on, namespace ${NAMESPACE} annotated ${ACCELERATE_ANNOTATION}: "true"?)`
    );
  }
  return undefined;
}

/**
 * Sockets the client's node moved from redirect to the stack so far (both backpressure
 * counters of the agent's pinned sockmap_stats).
 */
function fellBackCount(lab: Lab): bigint {
  const node = lab.state.pods.get(CLIENT_POD)?.nodeName;
  if (!node) throw new BenchError(`${CLIENT_POD} has no node`);
  const stats = readSockmapStats(agentPinRoot(lab.topology, node));
  return stats['fell-back'] + stats['fell-back-tcp-mem'];
}

/** Pins every thread of a running process to one CPU. */
async function pin(pid: number, cpu: number): Promise<void> {
  await execFileAsync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)]);
}

/** The labs of one scenario invocation, shared by its plans. */
class SameNodeLabs {
  readonly labs = new Map<LabMode, ModeLab>();
  private manifestDir = '';
  private up = false;
  /** sluice-sockmap runs in which backpressure moved the connection to the stack. */
  private fellBackRuns = 0;
  failed = false;

  constructor(
    private readonly w: Workload,
    private readonly modes: readonly Mode[],
  ) {}

  async ensure(ctx: RunContext): Promise<void> {
    if (this.up) return;
    this.up = true;
    this.manifestDir = mkdtempSync(join(tmpdir(), 'sluice-bench-manifests-'));
    const manifest = join(this.manifestDir, 'same-node.yaml');
    writeFileSync(manifest, toYaml(manifests(this.w)));
    for (const mode of LAB_MODES) {
      if (!this.modes.includes(mode)) continue;
      ctx.progress(`[${this.w.scenario}] bringing up the ${mode} lab... `);
      const started = performance.now();
      this.labs.set(mode, await upLab(mode, this.w.labPrefix, manifest));
      ctx.progress(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      ctx.signal.throwIfAborted();
    }
    // loopback: a second server on 127.0.0.1 inside the iptables lab's client pod.
    const host = this.labs.get('iptables');
    if (!host) throw new Error(`${this.w.scenario}: loopback runs in the iptables lab`);
    host.lab.topology.startProcess({ pod: CLIENT_POD }, this.w.serverArgv('127.0.0.1'));
    await waitListening(host.lab.topology, CLIENT_POD, [{ port: this.w.port, protocol: 'TCP' }]);
  }

  async down(): Promise<void> {
    this.up = false;
    const labs = [...this.labs.values()];
    this.labs.clear();
    const errors: unknown[] = [];
    for (const l of labs) await downLab(l).catch((e: unknown) => errors.push(e));
    if (this.manifestDir) rmSync(this.manifestDir, { recursive: true, force: true });
    this.manifestDir = '';
    if (errors.length > 0) throw errors[0];
  }

  /** One client run in `mode`: pins the server, runs the client, parses its output. */
  async run(
    mode: Mode,
    path: Path,
    p: Placement,
    seconds: number,
    ctx: RunContext,
  ): Promise<Samples> {
    const l = this.labs.get(mode === 'loopback' ? 'iptables' : mode);
    if (!l) throw new Error(`${this.w.scenario}: no lab for mode '${mode}'`);
    const topology = l.lab.topology;
    const serverOwner = mode === 'loopback' ? CLIENT_POD : SERVER_POD;
    const server = topology.liveProcesses(serverOwner)[0];
    if (!server)
      throw new BenchError(
        `${this.w.scenario}/${mode}: the server in ${serverOwner} is not running`,
      );
    await pin(server.pid, p.serverCpu);
    let ip = '127.0.0.1';
    if (mode !== 'loopback') {
      const state = l.lab.state;
      const service = state.services.get(objectKey(NAMESPACE, 'server'));
      const backend = state.pods.get(SERVER_POD);
      if (!service || !backend)
        throw new Error(`${this.w.scenario}: the server service is missing`);
      ip = path === 'pod' ? backend.ip : service.clusterIP;
    }
    const argv = [
      'taskset',
      '-c',
      String(p.clientCpu),
      ...this.w.clientArgv(ip, this.w.port, seconds),
    ];
    const before = mode === 'loopback' ? 0 : await txPackets(l.lab);
    const fellBackBefore = mode === 'sluice-sockmap' ? fellBackCount(l.lab) : 0n;
    const result = await topology.execInPod(CLIENT_POD, argv, {
      timeoutMs: seconds * 1000 + 20_000,
    });
    ctx.signal.throwIfAborted();
    const samples = this.w.parse(result.stdout);
    if (mode !== 'loopback') {
      const packets = (await txPackets(l.lab)) - before;
      ctx.progress(`${packets} packets out of the client's eth0; `);
      let fellBack = 0;
      if (mode === 'sluice-sockmap') {
        fellBack = Number(fellBackCount(l.lab) - fellBackBefore);
        this.fellBackRuns += fellBack > 0 ? 1 : 0;
        // How many of this mode's runs (all placements and paths so far) switched to the stack.
        ctx.note('runs-fell-back-to-stack', this.fellBackRuns);
        if (fellBack > 0) ctx.progress(`the connection fell back to the stack (backpressure); `);
      }
      const wrong = redirectProblem(mode, packets, fellBack);
      if (wrong) throw new BenchError(`${this.w.scenario}/${mode} ${path}: ${wrong}`);
    }
    return samples;
  }
}

/** The scenario for a workload: one plan per (placement, path), modes interleaved in each. */
export function sameNodeScenario(w: Workload): Scenario {
  // Why sluice-sockmap cannot run with this build, decided when the scenario is planned.
  let unavailable: string | undefined = sockmapUnavailable();
  const available = (): readonly Mode[] =>
    unavailable === undefined ? MODES : MODES.filter((m) => m !== 'sluice-sockmap');
  return {
    name: w.scenario,
    // A getter: the runner reads the modes after plan(), which re-probes the agent, so a mode
    // this build cannot run is left out (and said so) instead of failing every other mode.
    get modes(): readonly string[] {
      return available();
    },
    metrics: w.metrics,
    plan({ quick, cpu }: ScenarioOptions): ScenarioPlan[] {
      unavailable = sockmapUnavailable();
      const modes = available();
      const seconds = quick ? w.seconds.quick : w.seconds.full;
      // --quick: the placement where the stack's share shows best, through a ClusterIP.
      const all = placements(availableParallelism(), cpu);
      const plans: { placement: Placement; path: Path }[] = quick
        ? [{ placement: all[0] as Placement, path: 'clusterip' }]
        : all.flatMap((placement) =>
            (['pod', 'clusterip'] as const).map((path) => ({ placement, path })),
          );
      const labs = new SameNodeLabs(w, modes);
      let signal: AbortSignal | undefined;
      return plans.map(({ placement, path }, i) => ({
        params: planParams(placement, path, seconds, w.params),
        async setup(ctx: RunContext) {
          signal = ctx.signal;
          if (i === 0 && unavailable !== undefined) {
            ctx.progress(`[${w.scenario}] sluice-sockmap: unavailable: ${unavailable}\n`);
          }
          try {
            await labs.ensure(ctx);
          } catch (error) {
            labs.failed = true;
            throw error;
          }
        },
        async run(mode: string, ctx: RunContext) {
          try {
            return await labs.run(mode as Mode, path, placement, seconds, ctx);
          } catch (error) {
            labs.failed = true;
            throw error;
          }
        },
        async teardown() {
          if (i === plans.length - 1 || labs.failed || signal?.aborted) await labs.down();
        },
      }));
    },
  };
}
