/**
 * Scenario `connect`: new TCP connections through a ClusterIP (connect + `whoami` request +
 * answer + close, by native/connect_bench, a C client), at 1 / 1k / 10k services, for each
 * proxy mode side by side. kube-proxy's iptables rules match ClusterIPs one service after
 * another, so its cost grows with the service count; the floor is `direct` (the client dials a
 * backend pod's IP, no translation at all).
 *
 * One lab per proxy mode is up for the whole plan (named sl-bi-*, sl-bn-*, sl-bs-*, sl-bt-* and
 * sl-bd-* with no proxy for `direct`: in an iptables node every new connection, even to a pod IP,
 * walks KUBE-SERVICES, so only a proxy-less node is a floor), so modes interleave run by run
 * without reprogramming. `sluice-socket` is sluice as it runs by default (ClusterIP translated at
 * connect()); `sluice-tc` is sluice with socket LB off, so every packet of the connection is
 * balanced at TC on the client pod's veth (conntrack, DNAT, reverse NAT). The iptables lab uses iptables-legacy-restore: Debian's
 * default nft backend needs minutes to hours to load 10k services (DESIGN.md); the packet path
 * evaluates the same rules either way. The params record the backend.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../lab/lab.js';
import type { AgentConfigOverrides } from '../../lab/agents.js';
import { SOCKET_LB_OFF } from '../../lab/agents.js';
import type { ProxyMode } from '../../lab/proxy.js';
import { objectKey } from '../../model/index.js';
import { BenchError } from '../errors.js';
import { CLIENT_POD, fillerManifests, TARGET, targetManifests, toYaml } from '../lab/fleet.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { benchLabName } from '../lab/names.js';

const CONNECT_BENCH = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../native/.output/connect_bench',
);

const MODES = ['iptables', 'nftables', 'sluice-socket', 'sluice-tc', 'direct'] as const;
type Mode = (typeof MODES)[number];

interface LabKind {
  proxy: ProxyMode;
  /** The lab's name (sl-<name>-*). */
  name: string;
  agentConfig?: AgentConfigOverrides;
}

/** The lab each mode measures in. */
const LAB_OF_MODE: Record<Mode, LabKind> = {
  iptables: { proxy: 'iptables', name: benchLabName('bi') },
  nftables: { proxy: 'nftables', name: benchLabName('bn') },
  'sluice-socket': { proxy: 'sluice', name: benchLabName('bs') },
  'sluice-tc': { proxy: 'sluice', name: benchLabName('bt'), agentConfig: SOCKET_LB_OFF },
  direct: { proxy: 'none', name: benchLabName('bd') },
};

const METRICS: readonly MetricSpec[] = [
  { name: 'connect-rate', unit: 'connections/s', better: 'higher' },
  { name: 'connect-latency-p50', unit: 'µs', better: 'lower' },
  { name: 'connect-latency-p99', unit: 'µs', better: 'lower' },
];

const DEFAULT_SCALES = [1, 1000, 10000];
const QUICK_SCALES = [1, 100];
const SECONDS = 3;
const QUICK_SECONDS = 1;

interface ModeLab {
  lab: Lab;
  stateDir: string;
  labName: string;
}

interface ConnectResult {
  connections: number;
  errors: number;
  rate: number;
  p50_us: number;
  p99_us: number;
}

async function upLab(kind: LabKind, manifest: string): Promise<ModeLab> {
  const { proxy, name: labName } = kind;
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  try {
    const lab = await Lab.up({
      files: [manifest],
      nodes: 2,
      proxy,
      stateDir,
      labName,
      ...(proxy === 'iptables' ? { iptablesBackend: 'legacy' as const } : {}),
      ...(kind.agentConfig ? { agentConfig: kind.agentConfig } : {}),
    });
    // The client closes first and keeps TIME_WAIT: let it reuse ports, from a wide range.
    await lab.topology.execInPod(CLIENT_POD, [
      'sysctl',
      '-qw',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=1024 65000',
    ]);
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

function parseResult(stdout: string): ConnectResult {
  try {
    return JSON.parse(stdout) as ConnectResult;
  } catch {
    throw new BenchError(`connect_bench printed an unexpected result: ${stdout.trim()}`);
  }
}

function planFor(services: number, seconds: number): ScenarioPlan {
  const labs = new Map<Mode, ModeLab>();
  const params: Params = { services, concurrency: 1, 'iptables-backend': 'legacy' };
  let manifestDir = '';
  return {
    params,
    async setup(ctx: RunContext) {
      manifestDir = mkdtempSync(join(tmpdir(), 'sluice-bench-manifests-'));
      const manifest = join(manifestDir, 'fleet.yaml');
      writeFileSync(manifest, toYaml([...targetManifests(), ...fillerManifests(services - 1)]));
      for (const mode of MODES) {
        ctx.progress(`[connect services=${services}] bringing up the ${mode} lab... `);
        const started = performance.now();
        labs.set(mode, await upLab(LAB_OF_MODE[mode], manifest));
        ctx.progress(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
        ctx.signal.throwIfAborted();
      }
    },
    async run(mode: string, ctx: RunContext) {
      const m = mode as Mode;
      const l = labs.get(m);
      if (!l) throw new Error(`connect: no lab for mode '${mode}'`);
      const state = l.lab.state;
      const service = state.services.get(objectKey('default', TARGET.name));
      const backend = [...state.pods.values()].find((p) => p.labels.app === TARGET.name);
      if (!service || !backend) throw new Error('connect: the target service is missing');
      const ip = m === 'direct' ? backend.ip : service.clusterIP;
      const result = await l.lab.topology.execInPod(
        CLIENT_POD,
        [CONNECT_BENCH, ip, String(TARGET.port), String(seconds), '1'],
        { timeoutMs: seconds * 1000 + 10_000 },
      );
      ctx.signal.throwIfAborted();
      const r = parseResult(result.stdout);
      if (r.errors > 0) throw new BenchError(`connect/${mode}: ${r.errors} connections failed`);
      return {
        'connect-rate': r.rate,
        'connect-latency-p50': r.p50_us,
        'connect-latency-p99': r.p99_us,
      };
    },
    async teardown() {
      for (const l of labs.values()) await downLab(l);
      labs.clear();
      if (manifestDir) rmSync(manifestDir, { recursive: true, force: true });
    },
  };
}

export const connectScenario: Scenario = {
  name: 'connect',
  modes: MODES,
  metrics: METRICS,
  plan({ quick, services }: ScenarioOptions) {
    if (!existsSync(CONNECT_BENCH)) {
      throw new BenchError(`${CONNECT_BENCH} does not exist: build it with 'make -C native'`);
    }
    execFileSync('iptables-legacy-restore', ['--version'], { stdio: 'ignore' });
    const scales = services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES);
    return scales.map((n) => planFor(n, quick ? QUICK_SECONDS : SECONDS));
  },
};
