/**
 * Scenario `control-plane`: how long it takes to program N services of 10 endpoints each into
 * an empty datapath (program-time), and then to carry one endpoint change (one endpoint of one
 * service removed) end to end (change-time), for:
 *
 * - sluice-ts: the agent's own path (plan.ts planDatapath, diff.ts diffDatapath, apply.ts
 *   applyOps, then applyToProgrammed), as Agent.reconcile runs it, into the socket-LB object's
 *   maps freshly pinned under a temporary directory in /sys/fs/bpf. The object is loaded but
 *   nothing is attached. The change re-plans all N services and diffs them against what is
 *   programmed, as the agent does on every snapshot.
 * - iptables: kube-proxy's full sync (renderIptables + iptables-restore --noflush, legacy
 *   backend: the nft backend needs minutes at 10k, DESIGN.md) in a fresh scratch namespace
 *   sl-cp-<pid>; the change is its partial sync (renderIptablesPartial + iptables-restore
 *   --noflush). The jump preamble (iptables -N/-C/-I) and the iptables-save that lists the
 *   existing chains are not timed, as in src/kubeproxy/measure.ts.
 * - nftables: the same with renderNftables / renderNftablesPartial and `nft -f -`.
 *
 * The kube-proxy figures are render time plus the restore command's own duration (what
 * kubeproxy/measure.ts reports as render and first full sync / partial sync). Each run starts
 * from nothing: a new namespace (deleted after the run, and in teardown) or new pins (removed
 * after the run, and in teardown).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadObject } from '../../bpf/object.js';
import { applyOps, readProgrammed } from '../../agent/apply.js';
import { applyToProgrammed, diffDatapath } from '../../agent/diff.js';
import type { NodeInfo } from '../../agent/plan.js';
import { planDatapath } from '../../agent/plan.js';
import { emptyProgrammed } from '../../agent/programmed.js';
import { sockLbSpec } from '../../datapath/sock-lb.js';
import type { ServicePortView } from '../../model/types.js';
import {
  applyIptables,
  applyNftables,
  ensureIptablesJumps,
  iptablesChains,
} from '../../kubeproxy/apply.js';
import { syntheticViews } from '../../kubeproxy/fixtures.js';
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

/** The node kube-proxy renders for (the same as kubeproxy/measure.ts). */
const KUBE_NODE: KubeProxyNode = {
  name: 'measure',
  ip: '198.18.0.10',
  clusterCIDR: '198.18.16.0/20',
};
const AGENT_NODE: NodeInfo = { name: KUBE_NODE.name, ip: KUBE_NODE.ip };

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

const ms = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;

interface Inputs {
  views: ServicePortView[];
  changed: ServicePortView[];
  changedService: string;
}

function inputs(services: number): Inputs {
  const views = syntheticViews(services, ENDPOINTS_PER_SERVICE);
  const { views: changed, service } = withOneEndpointRemoved(views);
  return { views, changed, changedService: service };
}

/** sluice-ts: plan + diff + apply into fresh pins, then one change through the same path. */
async function runSluice(pinBase: string, input: Inputs, ctx: RunContext): Promise<Samples> {
  const pinRoot = mkdtempSync(join(pinBase, 'run-'));
  try {
    const obj = loadObject(sockLbSpec, { pinRoot });
    try {
      const maps = obj.maps;
      await nextTurn();
      ctx.signal.throwIfAborted();

      let t = process.hrtime.bigint();
      const plan = planDatapath(input.views, AGENT_NODE);
      const full = diffDatapath(plan, emptyProgrammed());
      applyOps(maps, full.ops);
      const programmed = applyToProgrammed(emptyProgrammed(), full.ops);
      const programMs = ms(t);

      await nextTurn();
      ctx.signal.throwIfAborted();

      t = process.hrtime.bigint();
      const changedPlan = planDatapath(input.changed, AGENT_NODE);
      const change = diffDatapath(changedPlan, programmed, full.counters);
      applyOps(maps, change.ops);
      const after = applyToProgrammed(programmed, change.ops);
      const changeMs = ms(t);

      // Not timed: the maps hold exactly the changed plan, and the change did something.
      if (change.ops.length === 0) throw new BenchError('control-plane: the change made no ops');
      if (after.services.size !== input.changed.length) {
        throw new BenchError(
          `control-plane: ${after.services.size} frontends for ${input.changed.length} services`,
        );
      }
      const left = diffDatapath(changedPlan, readProgrammed(maps), change.counters).ops;
      if (left.length !== 0) {
        throw new BenchError(`control-plane: the maps differ from the plan (${left.length} ops)`);
      }
      return { 'program-time': programMs, 'change-time': changeMs };
    } finally {
      obj.close();
    }
  } finally {
    rmSync(pinRoot, { recursive: true, force: true });
  }
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
          return runSluice(pinBase, input, ctx);
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
