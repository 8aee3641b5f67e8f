/**
 * Scenario `scale`: at 1 / 1k / 10k / 100k services, how long the proxy takes to program them
 * (program-time) and what a new connection through a ClusterIP then costs (connect latency by
 * native/connect_bench, as in `connect`).
 *
 * One one-node lab per mode (sl-ki-*, sl-kn-*, sl-ks-*) holds the measured service; each run
 * adds N filler services of 10 endpoints (`lab apply`, timed until every proxy of the lab has
 * programmed them: iptables-restore / nft -f returned, or the agent reports the new state
 * programmed; the agent's health is polled every 50 ms, so its figure is up to 50 ms high),
 * measures connections for a few seconds, and deletes the fillers again (not timed). So the
 * program time is end to end as an operator sees it: manifests in, datapath ready. Connections
 * are measured with the N services programmed (N + 1 with the measured one).
 *
 * The figure includes the lab's own handling of the manifests (model, state file, the manifest
 * the agent reads), the same work for every mode, on top of the proxy's: measured here at 10k
 * services, about 30 s for sluice and 70 s for iptables, where the proxies alone take 0.5 s and
 * 11 s (`control-plane`, which times the proxies' own work).
 *
 * Baselines where they finish in reasonable time (DESIGN.md): iptables (legacy backend) up to
 * 10k services, nftables up to 1k; sluice-socket at every scale, its lb maps sized by the agent
 * config beyond the default 64k services. The rows say which ran.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchLab } from '../lab/single-node.js';
import {
  agentConfigFor,
  connectBench,
  downBenchLabs,
  requireConnectBench,
  upBenchLab,
  writeFillers,
} from '../lab/single-node.js';
import { BenchError } from '../errors.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';
import type { ProxyMode } from '../../lab/proxy.js';
import { benchLabName } from '../lab/names.js';

export const MODES = ['iptables', 'nftables', 'sluice-socket'] as const;
type Mode = (typeof MODES)[number];

const METRICS: readonly MetricSpec[] = [
  { name: 'program-time', unit: 'ms', better: 'lower' },
  { name: 'connect-latency-p50', unit: 'µs', better: 'lower' },
  { name: 'connect-latency-p99', unit: 'µs', better: 'lower' },
];

/**
 * 100k is not in the default list: through the lab one run takes minutes (the lab's manifest
 * handling dominates), and today it fails: the manifest readers (model/manifests.ts and
 * sources/manifests.ts) push a file's documents as call arguments, which overflows the stack
 * at about 125k documents (2 per service). `--services ...,100000` asks for it explicitly.
 */
export const DEFAULT_SCALES: readonly number[] = [1, 1000, 10_000];
export const QUICK_SCALES: readonly number[] = [100];
/** The largest scale each baseline runs at (beyond, one run takes minutes to hours). */
export const MAX_SERVICES: Readonly<Record<Mode, number>> = {
  iptables: 10_000,
  nftables: 1000,
  'sluice-socket': Number.POSITIVE_INFINITY,
};

const LABS: Record<Mode, { proxy: ProxyMode; labName: string }> = {
  iptables: { proxy: 'iptables', labName: benchLabName('ki') },
  nftables: { proxy: 'nftables', labName: benchLabName('kn') },
  'sluice-socket': { proxy: 'sluice', labName: benchLabName('ks') },
};

function planFor(services: number, seconds: number): ScenarioPlan {
  const modes = MODES.filter((m) => services <= MAX_SERVICES[m]);
  const labs = new Map<Mode, BenchLab>();
  const params: Params = { services, endpoints: 10, 'iptables-backend': 'legacy' };
  return {
    params,
    modes,
    notes: {
      [NOTE.generatorCpus]: 'not pinned (connect_bench in the client pod)',
      [NOTE.measuredCpus]: 'not pinned (the node proxy)',
    },
    async setup(ctx: RunContext) {
      for (const mode of modes) {
        ctx.progress(`[scale services=${services}] bringing up the ${mode} lab... `);
        const t = performance.now();
        const agentConfig = mode === 'sluice-socket' ? agentConfigFor(services) : undefined;
        labs.set(
          mode,
          await upBenchLab({ ...LABS[mode], replicas: 2, ...(agentConfig ? { agentConfig } : {}) }),
        );
        ctx.progress(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
        ctx.signal.throwIfAborted();
      }
    },
    async run(mode: string, ctx: RunContext) {
      const l = labs.get(mode as Mode);
      if (!l) throw new Error(`scale: no lab for mode '${mode}'`);
      const file = writeFillers(l, services);
      const t = performance.now();
      await l.lab.apply([file]);
      const programMs = performance.now() - t;
      ctx.signal.throwIfAborted();
      try {
        await sleep(100); // let the proxy's follow-up work (health, GC) settle
        const r = await connectBench(l, seconds);
        if (r.errors > 0) throw new BenchError(`scale/${mode}: ${r.errors} connections failed`);
        return {
          'program-time': programMs,
          'connect-latency-p50': r.p50_us,
          'connect-latency-p99': r.p99_us,
        };
      } finally {
        await l.lab.delete([file]);
      }
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

export const scaleScenario: Scenario = {
  name: 'scale',
  modes: MODES,
  metrics: METRICS,
  plan({ quick, services }: ScenarioOptions) {
    requireConnectBench();
    const scales = services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES);
    return scales.map((n) => planFor(n, quick ? 1 : 3));
  },
};
