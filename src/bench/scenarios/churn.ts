/**
 * Scenario `churn`: endpoints changing N times per second while a client runs requests through
 * the service's ClusterIP; every request that fails (connection refused or reset, no answer) is
 * counted (failed-requests, target zero with sluice).
 *
 * One one-node lab per mode (sl-hi-*, sl-hn-*, sl-hs-*) with the measured service (3 echo
 * backends) and filler services. For the run's duration, native/connect_bench makes new
 * connections (connect, request, answer, close) to the ClusterIP while the bench flips the
 * backends' readiness one after another (backend 1 unready, ready again, backend 2 unready, ...):
 * each flip is one EndpointSlice change that the lab hands to the proxy, which reprograms the
 * service (iptables-restore --noflush, nft -f, or the sluice agent's make-before-break diff).
 * The backends keep serving throughout, so a failed request is one the proxy's update broke
 * (a half-applied rule set, a service briefly without backends), never a backend that went away.
 * A change starts no sooner than 1/N s after the previous one, and only once the previous one is
 * programmed: endpoint-change-rate is the rate reached, lower than N when programming is slower.
 * Through the lab each change is a full converge (state file, every proxy synced, the agent's
 * health polled), measured here at 1000 services: about 4 s per change for iptables and
 * nftables, 0.8 s for sluice, so the rate reached is far below 10/s in every mode; a faster
 * driver (the proxies' partial syncs and the agent's source fed directly) is future work.
 */
import type { BenchLab } from '../lab/single-node.js';
import {
  backendPods,
  connectBench,
  downBenchLabs,
  requireConnectBench,
  upBenchLab,
} from '../lab/single-node.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';
import type { ProxyMode } from '../../lab/proxy.js';

export const MODES = ['iptables', 'nftables', 'sluice-socket'] as const;
type Mode = (typeof MODES)[number];

const METRICS: readonly MetricSpec[] = [
  { name: 'failed-requests', unit: 'requests', better: 'lower' },
  { name: 'requests', unit: 'requests', better: 'higher' },
  { name: 'endpoint-change-rate', unit: 'changes/s', better: 'higher' },
];

const LABS: Record<Mode, { proxy: ProxyMode; labName: string }> = {
  iptables: { proxy: 'iptables', labName: 'hi' },
  nftables: { proxy: 'nftables', labName: 'hn' },
  'sluice-socket': { proxy: 'sluice', labName: 'hs' },
};

const REPLICAS = 3;
/** Concurrent client connections: enough to have requests in flight at every change. */
const CONCURRENCY = 4;

interface Sizes {
  services: number;
  rate: number;
  seconds: number;
}
const FULL: Sizes = { services: 1000, rate: 10, seconds: 10 };
const QUICK: Sizes = { services: 100, rate: 10, seconds: 3 };

/** Flips readiness one backend after another until the deadline; returns the changes made. */
async function churn(
  l: BenchLab,
  rate: number,
  until: number,
  signal: AbortSignal,
): Promise<number> {
  const pods = backendPods(l);
  const interval = 1000 / rate;
  const started = performance.now();
  let changes = 0;
  while (performance.now() < until && !signal.aborted) {
    const pod = pods[Math.floor(changes / 2) % pods.length];
    if (pod === undefined) break;
    await l.lab.setPod(pod, changes % 2 === 0 ? 'unready' : 'ready');
    changes++;
    const next = started + changes * interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  // Leave every backend ready for the next run (an odd count left one unready).
  if (changes % 2 === 1) {
    const pod = pods[Math.floor((changes - 1) / 2) % pods.length];
    if (pod !== undefined) await l.lab.setPod(pod, 'ready');
  }
  return changes;
}

function planFor(sizes: Sizes): ScenarioPlan {
  const labs = new Map<Mode, BenchLab>();
  const params: Params = {
    services: sizes.services,
    'changes-per-s': sizes.rate,
    seconds: sizes.seconds,
    concurrency: CONCURRENCY,
    'iptables-backend': 'legacy',
  };
  return {
    params,
    notes: {
      [NOTE.generatorCpus]: 'not pinned (connect_bench in the client pod)',
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
      const client = connectBench(l, sizes.seconds, CONCURRENCY);
      // Changes stop half a second before the client, so the last one is under load too.
      const t = performance.now();
      const until = t + sizes.seconds * 1000 - 500;
      let changes = 0;
      let churned = 0;
      try {
        changes = await churn(l, sizes.rate, until, ctx.signal);
        churned = (performance.now() - t) / 1000;
      } finally {
        // The client's result is awaited even when churning failed: it is a child to reap.
        await client.catch(() => undefined);
      }
      const r = await client;
      ctx.signal.throwIfAborted();
      return {
        'failed-requests': r.errors,
        requests: r.connections + r.errors,
        'endpoint-change-rate': changes / Math.max(churned, 1e-3),
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

export const churnScenario: Scenario = {
  name: 'churn',
  modes: MODES,
  metrics: METRICS,
  plan({ quick, services }: ScenarioOptions) {
    requireConnectBench();
    const base = quick ? QUICK : FULL;
    return (services ?? [base.services]).map((n) => planFor({ ...base, services: n }));
  },
};
