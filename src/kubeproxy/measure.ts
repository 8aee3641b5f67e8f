/**
 * How long the kube-proxy baselines take to program N services x M endpoints, each mode in a
 * fresh scratch namespace (sl-measure-<pid>-<mode>), deleted afterwards, also on SIGINT/SIGTERM:
 *
 *   node dist/kubeproxy/measure.js [--services 1000] [--endpoints 10]
 *        [--modes iptables-nft,iptables-legacy,nftables] [--json]
 *
 * Per mode: the first full sync (what kube-proxy does at start), a second full sync of the same
 * rules (its periodic resync), and a partial sync after one service's endpoints changed. The
 * iptables figures are iptables-restore alone; the jump preamble (iptables -C/-I) is reported
 * apart. Needs root. Not a test: the benchmarks call into this module's numbers.
 */
import { execFileSync } from 'node:child_process';
import { argv, exit } from 'node:process';
import { pathToFileURL } from 'node:url';
import type { ServicePortView } from '../model/types.js';
import {
  applyIptables,
  applyNftables,
  ensureIptablesJumps,
  iptablesChains,
  type IptablesBackend,
} from './apply.js';
import { endpoint, syntheticViews } from './fixtures.js';
import { renderIptables, renderIptablesPartial } from './iptables.js';
import type { KubeProxyNode } from './node.js';
import { renderNftables, renderNftablesPartial } from './nftables.js';

export type MeasureMode = 'iptables-nft' | 'iptables-legacy' | 'nftables';

export interface ModeMeasurement {
  mode: MeasureMode;
  /** The command measured and, for iptables, the backend it reported. */
  command: string;
  backend?: IptablesBackend;
  services: number;
  endpointsPerService: number;
  /** Size of the full-sync input. */
  bytes: number;
  renderMs: number;
  /** iptables only: the -N/-C/-I preamble of a first full sync. */
  jumpsMs?: number;
  firstFullSyncMs: number;
  resyncFullMs: number;
  partialSyncMs: number;
}

const NODE: KubeProxyNode = { name: 'measure', ip: '198.18.0.10', clusterCIDR: '198.18.16.0/20' };

function withOneChange(views: ServicePortView[]): ServicePortView[] {
  const [first, ...rest] = views;
  if (!first) return views;
  return [
    { ...first, endpoints: [...first.endpoints.slice(1), endpoint('198.18.31.250', 8080)] },
    ...rest,
  ];
}

export async function measureMode(
  mode: MeasureMode,
  services: number,
  endpointsPerService: number,
): Promise<ModeMeasurement> {
  const ns = `sl-measure-${process.pid}-${mode}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const cleanup = (): void => {
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  const onSignal = (): void => {
    cleanup();
    exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const views = syntheticViews(services, endpointsPerService);
    const changed = withOneChange(views);
    const base = { mode, services, endpointsPerService };
    if (mode === 'nftables') {
      const t = performance.now();
      const full = renderNftables(views, NODE);
      const renderMs = performance.now() - t;
      const first = await applyNftables(ns, full.script);
      const again = renderNftables(views, NODE, { firstSync: false }, full.state);
      const resync = await applyNftables(ns, again.script);
      const partial = renderNftablesPartial(changed, NODE, {
        changedServices: ['bench/svc-0'],
        previous: again.state,
      });
      const partialSync = await applyNftables(ns, partial.script);
      return {
        ...base,
        command: 'nft -f -',
        bytes: Buffer.byteLength(full.script),
        renderMs,
        firstFullSyncMs: first.durationMs,
        resyncFullMs: resync.durationMs,
        partialSyncMs: partialSync.durationMs,
      };
    }
    const backend = mode === 'iptables-legacy' ? 'legacy' : 'default';
    const t = performance.now();
    const full = renderIptables(views, NODE);
    const renderMs = performance.now() - t;
    const jumps = await ensureIptablesJumps(ns, { backend });
    const first = await applyIptables(ns, full.text, { backend });
    const resync = await applyIptables(ns, full.text, { backend });
    const partial = renderIptablesPartial(changed, NODE, {
      changedServices: ['bench/svc-0'],
      existingNatChains: await iptablesChains(ns, 'nat', { backend }),
    });
    const partialSync = await applyIptables(ns, partial.text, { backend });
    return {
      ...base,
      command: first.argv.join(' '),
      backend: first.backend,
      bytes: Buffer.byteLength(full.text),
      renderMs,
      jumpsMs: jumps.durationMs,
      firstFullSyncMs: first.durationMs,
      resyncFullMs: resync.durationMs,
      partialSyncMs: partialSync.durationMs,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
  }
}

function option(name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const services = Number(option('services', '1000'));
  const endpoints = Number(option('endpoints', '10'));
  const modes = option('modes', 'iptables-nft,iptables-legacy,nftables').split(
    ',',
  ) as MeasureMode[];
  const results: ModeMeasurement[] = [];
  for (const mode of modes) results.push(await measureMode(mode, services, endpoints));
  if (argv.includes('--json')) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  const ms = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(0)} ms`);
  console.log(`${services} services x ${endpoints} endpoints, full sync inside a namespace`);
  for (const r of results) {
    console.log(
      `${r.mode.padEnd(16)} ${r.command}${r.backend ? ` [${r.backend}]` : ''}\n` +
        `  input ${(r.bytes / 1e6).toFixed(1)} MB, render ${ms(r.renderMs)}, jumps ${ms(r.jumpsMs)}\n` +
        `  first full sync ${ms(r.firstFullSyncMs)}, full resync ${ms(r.resyncFullMs)}, ` +
        `partial sync (1 service) ${ms(r.partialSyncMs)}`,
    );
  }
}

if (import.meta.url === pathToFileURL(argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    exit(1);
  });
}
