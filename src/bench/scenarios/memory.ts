/**
 * Scenario `memory`: what the sluice agent costs in memory at each scale: its resident set
 * (agent-rss-mib, VmRSS, and agent-peak-rss-mib, VmHWM: the high-water mark while it programmed)
 * and the kernel memory of the BPF maps it holds (map-mib: the sum of fdinfo `memlock`, the
 * kernel's own accounting, over every map fd the agent has open, each map once).
 *
 * A fresh one-node lab (sl-ky-*) per run with the measured service and N-1 filler services of
 * 10 endpoints: the agent starts, programs them all, and is measured once it reports them
 * programmed and half a second has passed. One mode, sluice-socket (the agent as it runs by
 * default); kube-proxy's memory is not measured here (the lab runs iptables-restore / nft
 * directly, there is no kube-proxy process whose RSS would compare). The maps are preallocated
 * at their configured sizes, so map-mib follows the configuration more than N (beyond 60k
 * services the lb maps are sized up by the agent config, as an operator would).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  agentConfigFor,
  agentPid,
  downBenchLab,
  mapsMiB,
  rssMiB,
  upBenchLab,
} from '../lab/single-node.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { NOTE } from '../runner.js';
import { benchLabName } from '../lab/names.js';

const METRICS: readonly MetricSpec[] = [
  { name: 'agent-rss-mib', unit: 'MiB', better: 'lower' },
  { name: 'agent-peak-rss-mib', unit: 'MiB', better: 'lower' },
  { name: 'map-mib', unit: 'MiB', better: 'lower' },
];

/**
 * 100k on request (--services): a fresh lab of 100k services takes minutes per run, and today
 * fails in the manifest readers (see scale.ts).
 */
export const DEFAULT_SCALES: readonly number[] = [1, 1000, 10_000];
export const QUICK_SCALES: readonly number[] = [100];

function planFor(services: number): ScenarioPlan {
  const params: Params = { services, endpoints: 10 };
  return {
    params,
    notes: {
      [NOTE.generatorCpus]: 'none (no traffic)',
      [NOTE.measuredCpus]: 'not pinned (the agent)',
    },
    async run(_mode: string, ctx: RunContext) {
      const agentConfig = agentConfigFor(services);
      const l = await upBenchLab({
        proxy: 'sluice',
        labName: benchLabName('ky'),
        replicas: 1,
        fillers: services - 1,
        ...(agentConfig ? { agentConfig } : {}),
      });
      try {
        ctx.signal.throwIfAborted();
        await sleep(500);
        const pid = agentPid(l);
        const { rss, peak } = rssMiB(pid);
        const maps = mapsMiB(pid);
        ctx.note('agent-maps', maps.maps);
        return { 'agent-rss-mib': rss, 'agent-peak-rss-mib': peak, 'map-mib': maps.mib };
      } finally {
        await downBenchLab(l);
      }
    },
  };
}

export const memoryScenario: Scenario = {
  name: 'memory',
  modes: ['sluice-socket'],
  metrics: METRICS,
  plan({ quick, services }: ScenarioOptions) {
    return (services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES)).map(planFor);
  },
};
