/**
 * Scenario `churn`: endpoints changing N times per second (default 10, param
 * target-changes-per-s) while a client runs requests through the service's ClusterIP; every
 * request that fails is counted (failed-requests, target zero with sluice).
 *
 * One one-node lab per mode (sl-hi-*, sl-hn-*, sl-hs-*) with the measured service (3 echo
 * backends) and filler services. For the run's duration, native/churn_client makes new
 * exchanges (connect, `whoami`, answer, close) to the ClusterIP while the bench flips the
 * backends' readiness one after another (backend 1 unready, ready again, backend 2 unready, ...),
 * the same sequence in every mode and run. Each flip is one EndpointSlice change that the lab
 * programs through the proxy's incremental path (Lab.setPodReady): kube-proxy's partial sync
 * (iptables-restore --noflush of the top-level chains and the service's chains; an nft
 * transaction of the changed map elements and chains), or the sluice agent's diff of the new
 * cluster (its manifests source, then the make-before-break update of the service's slots).
 * The backends keep serving throughout, so a failed request is one the proxy's update broke (a
 * half-applied rule set, a service briefly without backends), never a backend that went away;
 * and an exchange that began on a backend before it left the service and completed is counted
 * as the success it is (churn_client.c waits for those in flight at the end).
 *
 * A failed request is a connect error, a reset, no whole answer within TIMEOUT_MS, or an answer
 * that is not one of the backends' names. A change starts no sooner than 1/N s after the
 * previous one, and only once the previous one is programmed (the lab waits for the proxy), so
 * changes-per-s is the rate reached, lower than N where one change takes longer than 1/N s;
 * change-ms is the median time the proxies took to program one change (Lab.setPodReady's
 * syncMs). For iptables and nftables that includes rendering the rules in the lab's TypeScript
 * model of kube-proxy, which walks every service as kube-proxy's partial sync does, and is
 * slower at it than kube-proxy's Go; for sluice, writing the cluster for the agent and the
 * agent's manifests source (debounced 20 ms; it re-reads the one file of the lab's cluster-svc-NN
 * shards that changed), its diff, and the lab's polling of
 * its health endpoint until the change is reported programmed.
 *
 * The target rate is SLUICE_CHURN_RATE (changes/s) in the environment, or churnScenarioAt().
 */
import type { BenchLab } from '../lab/single-node.js';
import {
  backendPods,
  churnClient,
  downBenchLabs,
  requireChurnClient,
  upBenchLab,
} from '../lab/single-node.js';
import { BenchError } from '../errors.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';
import type { ObjectKey } from '../../model/index.js';
import type { PodReadyResult } from '../../lab/lab.js';
import type { ProxyMode } from '../../lab/proxy.js';
import { benchLabName } from '../lab/names.js';

export const MODES = ['iptables', 'nftables', 'sluice-socket'] as const;
type Mode = (typeof MODES)[number];

const METRICS: readonly MetricSpec[] = [
  { name: 'failed-requests', unit: 'requests', better: 'lower' },
  { name: 'requests', unit: 'requests', better: 'higher' },
  { name: 'changes-per-s', unit: 'changes/s', better: 'higher' },
  { name: 'change-ms', unit: 'ms', better: 'lower' },
];

const LABS: Record<Mode, { proxy: ProxyMode; labName: string }> = {
  iptables: { proxy: 'iptables', labName: benchLabName('hi') },
  nftables: { proxy: 'nftables', labName: benchLabName('hn') },
  'sluice-socket': { proxy: 'sluice', labName: benchLabName('hs') },
};

const REPLICAS = 3;
/** Concurrent client connections: enough to have requests in flight at every change. */
const CONCURRENCY = 4;
/** An exchange without a whole answer after this long is a failed request. */
const TIMEOUT_MS = 1000;
export const DEFAULT_RATE = 10;

interface Sizes {
  services: number;
  rate: number;
  seconds: number;
}
const FULL: Omit<Sizes, 'rate'> = { services: 1000, seconds: 10 };
const QUICK: Omit<Sizes, 'rate'> = { services: 100, seconds: 3 };

/**
 * The k-th change of every run in every mode: backend floor(k/2) (of the sorted backends) goes
 * unready at even k and ready again at odd k, so at most one backend is out at a time.
 */
export function changeAt(
  pods: readonly ObjectKey[],
  k: number,
): { pod: ObjectKey; ready: boolean } {
  const pod = pods[Math.floor(k / 2) % pods.length];
  if (pod === undefined) throw new BenchError('churn: the service has no backends');
  return { pod, ready: k % 2 === 1 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? (s[mid] ?? NaN)
      : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

interface Churned {
  changes: number;
  seconds: number;
  changeMs: number[];
  /** Changes tried again because another lab held the xtables lock. */
  lockRetries: number;
}

/** Makes changes paced at `rate` until the deadline; leaves every backend ready. */
async function churn(
  l: BenchLab,
  rate: number,
  until: number,
  signal: AbortSignal,
): Promise<Churned> {
  const pods = backendPods(l).sort();
  const interval = 1000 / rate;
  const started = performance.now();
  const changeMs: number[] = [];
  let lockRetries = 0;
  let changes = 0;
  let last = started;
  while (performance.now() < until && !signal.aborted) {
    const { pod, ready } = changeAt(pods, changes);
    const r = await setPodReadyRetrying(l, pod, ready, () => lockRetries++);
    last = performance.now();
    if (r.services.length !== 1) {
      throw new BenchError(
        `churn: change ${changes} of ${pod} changed ${r.services.length} services`,
      );
    }
    changeMs.push(r.syncMs);
    changes++;
    const wait = started + changes * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const seconds = (last - started) / 1000;
  // Leave every backend ready for the next run (an odd count left one unready).
  if (changes % 2 === 1) {
    await setPodReadyRetrying(l, changeAt(pods, changes).pod, true, () => lockRetries++);
  }
  await l.lab.save();
  return { changes, seconds, changeMs, lockRetries };
}

/**
 * One change, tried again (twice at most) when iptables-restore gave up on the xtables lock: the
 * lock is host-wide, so on a shared machine another lab's long restore holds it (a real node's
 * kube-proxy has it to itself, and retries a failed sync too). A failed restore changed nothing
 * and the lab keeps its previous state, so the retry is the same change; its time counts
 * against changes-per-s.
 */
async function setPodReadyRetrying(
  l: BenchLab,
  pod: ObjectKey,
  ready: boolean,
  retried: () => void,
): Promise<PodReadyResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      // The lab's record is written once at the end: it is the lab's bookkeeping, no part of
      // what an EndpointSlice change costs a proxy.
      return await l.lab.setPodReady(pod, ready, { save: false });
    } catch (error) {
      const locked = error instanceof Error && error.message.includes('xtables lock');
      if (!locked || attempt >= 3) throw error;
      retried();
    }
  }
}

function planFor(sizes: Sizes): ScenarioPlan {
  const labs = new Map<Mode, BenchLab>();
  const failures = new Map<Mode, Record<string, number>>();
  const params: Params = {
    services: sizes.services,
    'target-changes-per-s': sizes.rate,
    seconds: sizes.seconds,
    concurrency: CONCURRENCY,
    'timeout-ms': TIMEOUT_MS,
    'iptables-backend': 'legacy',
  };
  return {
    params,
    notes: {
      [NOTE.generatorCpus]: 'not pinned (churn_client in the client pod)',
      [NOTE.measuredCpus]: 'not pinned (the node proxy)',
    },
    async setup(ctx: RunContext) {
      for (const mode of MODES) {
        ctx.progress(`[churn services=${sizes.services}] bringing up the ${mode} lab... `);
        const t = performance.now();
        labs.set(
          mode,
          await upBenchLab({ ...LABS[mode], replicas: REPLICAS, fillers: sizes.services - 1 }),
        );
        ctx.progress(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
        ctx.signal.throwIfAborted();
      }
    },
    async run(mode: string, ctx: RunContext) {
      const l = labs.get(mode as Mode);
      if (!l) throw new Error(`churn: no lab for mode '${mode}'`);
      const names = backendPods(l).map((k) => k.slice(k.indexOf('/') + 1));
      const client = churnClient(l, {
        seconds: sizes.seconds,
        concurrency: CONCURRENCY,
        timeoutMs: TIMEOUT_MS,
        names,
      });
      // Changes stop half a second before the client, so the last one is under load too.
      const until = performance.now() + sizes.seconds * 1000 - 500;
      let churned: Churned;
      try {
        churned = await churn(l, sizes.rate, until, ctx.signal);
      } finally {
        // The client's result is awaited even when churning failed: it is a child to reap.
        await client.catch(() => undefined);
      }
      const r = await client;
      ctx.signal.throwIfAborted();
      // Which way requests failed, summed over this mode's runs.
      const f = failures.get(mode as Mode) ?? {};
      for (const k of ['connect_errors', 'resets', 'timeouts', 'wrong_answers'] as const) {
        f[k] = (f[k] ?? 0) + r[k];
        ctx.note(`failed-${k.replace('_', '-')}`, f[k]);
      }
      failures.set(mode as Mode, f);
      f.lockRetries = (f.lockRetries ?? 0) + churned.lockRetries;
      ctx.note('xtables-lock-retries', f.lockRetries);
      return {
        'failed-requests': r.requests - r.ok,
        requests: r.requests,
        'changes-per-s': churned.changes / Math.max(churned.seconds, 1e-3),
        'change-ms': median(churned.changeMs),
      };
    },
    async teardown() {
      try {
        await downBenchLabs(labs.values());
      } finally {
        labs.clear();
      }
    },
  };
}

/** The churn scenario at a target rate of `rate` changes/s. */
export function churnScenarioAt(rate: number): Scenario {
  if (!(rate > 0))
    throw new BenchError(`churn: the target rate must be > 0 changes/s, got ${rate}`);
  return {
    name: 'churn',
    modes: MODES,
    metrics: METRICS,
    plan({ quick, services }: ScenarioOptions) {
      requireChurnClient();
      const base = quick ? QUICK : FULL;
      return (services ?? [base.services]).map((n) => planFor({ ...base, rate, services: n }));
    },
  };
}

/** The target rate from SLUICE_CHURN_RATE, read when the scenario is planned. */
function envRate(): number {
  const v = process.env.SLUICE_CHURN_RATE;
  return v === undefined || v === '' ? DEFAULT_RATE : Number(v);
}

export const churnScenario: Scenario = {
  name: 'churn',
  modes: MODES,
  metrics: METRICS,
  plan: (options: ScenarioOptions) => churnScenarioAt(envRate()).plan(options),
};
