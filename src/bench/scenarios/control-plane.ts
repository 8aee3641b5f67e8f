/**
 * Scenario `control-plane`: how long it takes to program N services of 10 endpoints each into
 * an empty datapath (program-time), and then to carry one endpoint change (one endpoint of one
 * service removed) end to end (change-time), for:
 *
 * - sluice-ts: the agent's own Reconciler (src/agent/reconciler.ts), in a Node process of its
 *   own as the agent runs (src/bench/workers/sluice-program.ts; with the agent's V8 flags,
 *   src/agent/v8-flags.ts), into the socket-LB
 *   object's maps freshly pinned under a temporary directory in /sys/fs/bpf (loaded, nothing
 *   attached). program-time is its full pass from the cluster state (proxy view, plan, diff,
 *   map writes). change-time is what the agent does for one watch event: the EndpointSlice in
 *   the state replaced (one endpoint fewer), then the incremental pass (that Service re-planned,
 *   the entries it affects diffed and written); the median of CHANGES_PER_RUN such changes, on
 *   services spread over the whole range, is the run's sample.
 * - iptables: kube-proxy's full sync (renderIptables + iptables-restore --noflush, legacy
 *   backend: the nft backend needs minutes at 10k, DESIGN.md) in a fresh scratch namespace
 *   sl-cp-<pid>; the change is its partial sync (renderIptablesPartial + iptables-restore
 *   --noflush). The jump preamble (iptables -N/-C/-I) and the iptables-save that lists the
 *   existing chains are not timed, as in src/kubeproxy/measure.ts.
 * - nftables: the same with renderNftables / renderNftablesPartial and `nft -f -`.
 *
 * All modes start from the same synthetic cluster (src/agent/synthetic.ts): the kube-proxy
 * modes render proxyView of it (not timed), as kube-proxy's trackers hand it over.
 *
 * The kube-proxy figures are render time plus the restore command's own duration (what
 * kubeproxy/measure.ts reports as render and first full sync / partial sync). Each run starts
 * from nothing: a new namespace (deleted after the run, and in teardown) or new pins (removed
 * after the run, and in teardown).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadObject } from '../../bpf/object.js';
import { readProgrammed } from '../../agent/apply.js';
import type { LbMapHandles } from '../../agent/apply.js';
import { diffDatapath } from '../../agent/diff.js';
import { planForNode } from '../../agent/plan.js';
import { Reconciler } from '../../agent/reconciler.js';
import { SYNTHETIC_NODES, syntheticCluster, toggleFirstEndpoint } from '../../agent/synthetic.js';
import { AGENT_V8_FLAGS } from '../../agent/v8-flags.js';
import { sockLbSpec } from '../../datapath/sock-lb.js';
import { proxyView } from '../../model/proxy-view.js';
import type { ClusterState, ServicePortView } from '../../model/types.js';
import {
  applyIptables,
  applyNftables,
  ensureIptablesJumps,
  iptablesChains,
} from '../../kubeproxy/apply.js';
import { renderIptables, renderIptablesPartial } from '../../kubeproxy/iptables.js';
import type { KubeProxyNode } from '../../kubeproxy/node.js';
import { renderNftables, renderNftablesPartial } from '../../kubeproxy/nftables.js';
import { BenchError } from '../errors.js';
import type { Params } from '../results.js';
import type {
  MetricSpec,
  RunContext,
  Samples,
  Scenario,
  ScenarioOptions,
  ScenarioPlan,
} from '../runner.js';

export const MODES = ['sluice-ts', 'iptables', 'nftables'] as const;

export const METRICS: readonly MetricSpec[] = [
  { name: 'program-time', unit: 'ms', better: 'lower' },
  { name: 'change-time', unit: 'ms', better: 'lower' },
];

export const DEFAULT_SCALES: readonly number[] = [1000, 10000];
export const QUICK_SCALES: readonly number[] = [100, 1000];
export const ENDPOINTS_PER_SERVICE = 10;

/** The bpffs under which each run's pins go (in a temporary directory of this process). */
const BPFFS = '/sys/fs/bpf';

/** One endpoint change per run is too noisy to read a sub-millisecond figure from. */
export const CHANGES_PER_RUN = 25;

const AGENT_NODE = SYNTHETIC_NODES[0] as { name: string; ip: string };

/** The node kube-proxy renders for: the agent's node of the synthetic cluster. */
const KUBE_NODE: KubeProxyNode = {
  name: AGENT_NODE.name,
  ip: AGENT_NODE.ip,
  clusterCIDR: '10.64.0.0/10',
};

/** Index of the service whose endpoint changes: in the middle, so neither end is favoured. */
export function changedIndex(services: number): number {
  return Math.floor(services / 2);
}

/** The views after the change: the changed service lost its first endpoint. */
export function withOneEndpointRemoved(views: readonly ServicePortView[]): {
  views: ServicePortView[];
  service: string;
} {
  const i = changedIndex(views.length);
  const target = views[i];
  if (!target || target.endpoints.length === 0) {
    throw new BenchError('control-plane: no service with an endpoint to remove');
  }
  const out = [...views];
  out[i] = { ...target, endpoints: target.endpoints.slice(1) };
  return { views: out, service: `${target.namespace}/${target.serviceName}` };
}

const execFileAsync = promisify(execFile);

const ms = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;

interface Inputs {
  services: number;
  views: ServicePortView[];
  changed: ServicePortView[];
  changedService: string;
}

function inputs(services: number): Inputs {
  const views = proxyView(syntheticCluster(services, ENDPOINTS_PER_SERVICE), AGENT_NODE.name);
  const { views: changed, service } = withOneEndpointRemoved(views);
  return { services, views, changed, changedService: service };
}

/** The services whose endpoint changes in one run: spread over the range, none twice. */
export function changedServices(services: number, count: number): number[] {
  const picked = new Set<number>();
  for (let k = 0; picked.size < Math.min(count, services); k++) {
    picked.add((changedIndex(services) + k * 7919) % services);
  }
  return [...picked];
}

/**
 * Map sizes that hold the scale (every endpoint is a pod of its own, so 100k services need a
 * million backends), never below the datapath's defaults: what an operator sets with
 * `maps.maxEntries` for such a cluster.
 */
export function mapSizes(services: number): Record<string, number> {
  const endpoints = Math.ceil(services * ENDPOINTS_PER_SERVICE * 1.25);
  return {
    lb4_services: Math.max(65536, Math.ceil(services * 1.25)),
    lb4_reverse_nat: Math.max(65536, Math.ceil(services * 1.25)),
    lb_slots: Math.max(262144, endpoints),
    lb4_backends: Math.max(262144, endpoints),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** sluice-ts: the agent's full pass into fresh pins, then one-endpoint changes, one by one. */
export async function runSluice(
  pinBase: string,
  services: number,
  signal: AbortSignal,
): Promise<Samples> {
  const pinRoot = mkdtempSync(join(pinBase, 'run-'));
  try {
    const obj = loadObject(sockLbSpec, { pinRoot, maxEntries: mapSizes(services) });
    try {
      const maps = obj.maps as unknown as LbMapHandles;
      // Every run builds its own state: the changes edit it.
      const state: ClusterState = syntheticCluster(services, ENDPOINTS_PER_SERVICE);
      const reconciler = new Reconciler(AGENT_NODE.name, maps, readProgrammed(maps));
      await nextTurn();
      signal.throwIfAborted();
      // Settle the heap (the worker runs with --expose-gc): building the synthetic cluster just
      // now left garbage that is the harness's, not the reconcile's, and collecting it inside the
      // timed pass measured ~30 ms of the ~500. kube-proxy's modes are timed from inputs built
      // beforehand too.
      (globalThis as { gc?: () => void }).gc?.();

      let t = process.hrtime.bigint();
      reconciler.reconcile(state, undefined);
      const programMs = ms(t);

      const changeMs: number[] = [];
      for (const i of changedServices(services, CHANGES_PER_RUN)) {
        await nextTurn();
        signal.throwIfAborted();
        t = process.hrtime.bigint();
        const changes = toggleFirstEndpoint(state, i);
        const outcome = reconciler.reconcile(state, changes);
        changeMs.push(ms(t));
        if (outcome.mode !== 'incremental' || outcome.ops.length === 0) {
          throw new BenchError(
            `control-plane: change ${i} was ${outcome.mode}, ${outcome.ops.length} ops`,
          );
        }
      }

      // Not timed: the maps hold exactly what a full plan of the changed state asks for.
      const left = diffDatapath(
        planForNode(state, AGENT_NODE.name),
        readProgrammed(maps),
        reconciler.idCounters,
      ).ops;
      if (left.length !== 0) {
        throw new BenchError(`control-plane: the maps differ from the plan (${left.length} ops)`);
      }
      return { 'program-time': programMs, 'change-time': median(changeMs) };
    } finally {
      obj.close();
    }
  } finally {
    rmSync(pinRoot, { recursive: true, force: true });
  }
}

const SLUICE_WORKER = fileURLToPath(new URL('../workers/sluice-program.js', import.meta.url));

/**
 * runSluice in a child Node process of its own (src/bench/workers/sluice-program.ts says why),
 * ended by the abort signal. Its pins go under pinBase like the in-process run's.
 */
export async function runSluiceProcess(
  pinBase: string,
  services: number,
  signal: AbortSignal,
): Promise<Samples> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(
      process.execPath,
      ['--expose-gc', ...AGENT_V8_FLAGS, SLUICE_WORKER, String(services), pinBase],
      { signal, maxBuffer: 1 << 20 },
    ));
  } catch (error) {
    signal.throwIfAborted();
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new BenchError(
      `control-plane: the sluice-ts worker failed${stderr ? `: ${stderr}` : ` (${String(error)})`}`,
    );
  }
  const samples = JSON.parse(stdout) as Samples;
  if (typeof samples['program-time'] !== 'number' || typeof samples['change-time'] !== 'number') {
    throw new BenchError(`control-plane: the sluice-ts worker printed '${stdout.trim()}'`);
  }
  return samples;
}

function deleteNetns(ns: string): void {
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

/** Runs `body` in a new scratch namespace that is deleted afterwards, also on failure. */
async function inScratchNetns<T>(ns: string, body: () => Promise<T>): Promise<T> {
  deleteNetns(ns); // a leftover of an interrupted run of this process
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return await body();
  } finally {
    deleteNetns(ns);
  }
}

/** kube-proxy iptables mode: full sync, then a partial sync of the changed service. */
async function runIptables(ns: string, input: Inputs, ctx: RunContext): Promise<Samples> {
  return inScratchNetns(ns, async () => {
    const backend = 'legacy';
    await ensureIptablesJumps(ns, { backend });
    ctx.signal.throwIfAborted();

    let t = process.hrtime.bigint();
    const full = renderIptables(input.views, KUBE_NODE);
    const renderMs = ms(t);
    const applied = await applyIptables(ns, full.text, { backend });
    if (applied.backend !== 'legacy') {
      throw new BenchError(`control-plane: iptables-restore reported backend ${applied.backend}`);
    }
    const programMs = renderMs + applied.durationMs;
    ctx.signal.throwIfAborted();

    const existingNatChains = await iptablesChains(ns, 'nat', { backend });
    t = process.hrtime.bigint();
    const partial = renderIptablesPartial(input.changed, KUBE_NODE, {
      changedServices: [input.changedService],
      existingNatChains,
    });
    const partialRenderMs = ms(t);
    const changed = await applyIptables(ns, partial.text, { backend });
    ctx.signal.throwIfAborted();
    return {
      'program-time': programMs,
      'change-time': partialRenderMs + changed.durationMs,
    };
  });
}

/** kube-proxy nftables mode: full sync, then a partial sync of the changed service. */
async function runNftables(ns: string, input: Inputs, ctx: RunContext): Promise<Samples> {
  return inScratchNetns(ns, async () => {
    let t = process.hrtime.bigint();
    const full = renderNftables(input.views, KUBE_NODE);
    const renderMs = ms(t);
    const applied = await applyNftables(ns, full.script);
    const programMs = renderMs + applied.durationMs;
    ctx.signal.throwIfAborted();

    t = process.hrtime.bigint();
    const partial = renderNftablesPartial(input.changed, KUBE_NODE, {
      changedServices: [input.changedService],
      previous: full.state,
    });
    const partialRenderMs = ms(t);
    const changed = await applyNftables(ns, partial.script);
    ctx.signal.throwIfAborted();
    return {
      'program-time': programMs,
      'change-time': partialRenderMs + changed.durationMs,
    };
  });
}

function planFor(services: number): ScenarioPlan {
  const params: Params = {
    services,
    endpoints: ENDPOINTS_PER_SERVICE,
    'iptables-backend': 'legacy',
  };
  const ns = `sl-cp-${process.pid}`;
  let input: Inputs | undefined;
  let pinBase: string | undefined;
  return {
    params,
    setup() {
      input = inputs(services);
      pinBase = mkdtempSync(join(BPFFS, `sl-cp-${process.pid}-`));
      return Promise.resolve();
    },
    run(mode, ctx) {
      if (!input || !pinBase) return Promise.reject(new Error('control-plane: run before setup'));
      switch (mode) {
        case 'sluice-ts':
          return runSluiceProcess(pinBase, input.services, ctx.signal);
        case 'iptables':
          return runIptables(ns, input, ctx);
        case 'nftables':
          return runNftables(ns, input, ctx);
        default:
          return Promise.reject(new Error(`control-plane: unknown mode '${mode}'`));
      }
    },
    teardown() {
      deleteNetns(ns);
      if (pinBase !== undefined && existsSync(pinBase)) {
        rmSync(pinBase, { recursive: true, force: true });
      }
      pinBase = undefined;
      input = undefined;
      return Promise.resolve();
    },
  };
}

export const controlPlaneScenario: Scenario = {
  name: 'control-plane',
  modes: MODES,
  metrics: METRICS,
  plan({ quick, services }: ScenarioOptions) {
    const scales = services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES);
    return scales.map(planFor);
  },
};
