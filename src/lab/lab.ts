/**
 * The lab: a Kubernetes-like cluster on one machine. Manifests go through the model (validated
 * as a whole before anything is created), the topology makes nodes and pods out of namespaces,
 * workloads serve every container port, and each node's proxy follows the cluster state.
 * Every command converges the running lab to the new state and records it.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterState, ManifestDoc, ObjectKey, Pod } from '../model/index.js';
import {
  applyObjects,
  deleteObjects,
  emptyState,
  loadManifests,
  objectKey,
  parseManifestText,
  refsOf,
  SERVICE_NAME_LABEL,
  setPodConditions,
} from '../model/index.js';
import type { IptablesBackendChoice } from '../kubeproxy/apply.js';
import type { AgentConfigOverrides } from './agents.js';
import { setAgentOverrides } from './agents.js';
import type { ClusterRecord, LabConfig } from './cluster-file.js';
import { clusterPath, readCluster, removeCluster, writeCluster } from './cluster-file.js';
import { withLabLock } from './lock.js';
import { resetProxyState, syncProxies, syncProxiesPartial } from './proxy.js';
import type { ProxyMode } from './proxy.js';
import type { DestroyReport } from './topology/index.js';
import { availableCongestionControls } from '../datapath/sock-redirect.js';
import { destroyLab, LabError, LabTopology, resolveStateDir } from './topology/index.js';
import type { PortRef } from './workloads/index.js';
import { startWorkload, stopWorkload, waitListening } from './workloads/index.js';

const DEFAULT_APP = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../examples/default-app.yaml',
);

export interface UpOptions {
  /** Manifest files or directories; none means the embedded default app. */
  files: string[];
  nodes: number;
  proxy: ProxyMode;
  stateDir?: string;
  /** Names a second lab (sl-<name>-*), so tests can run beside a user's lab. */
  labName?: string;
  /** iptables mode: 'legacy' runs iptables-legacy-restore (default: the distribution's). */
  iptablesBackend?: IptablesBackendChoice;
  /**
   * sluice mode: changes to the agents' generated config (e.g. SOCKET_LB_OFF from agents.ts),
   * kept for every agent of this lab, restarted ones included.
   */
  agentConfig?: AgentConfigOverrides;
}

export type PodAction = 'ready' | 'unready' | 'terminate';

export interface PodReadyResult {
  /** Services (namespace/name) whose EndpointSlices changed. */
  services: string[];
  /** How long programming the proxies took (rendering and applying; the agents' whole diff). */
  syncMs: number;
}

/** How long a new pod's servers may take to listen. */
const SERVE_TIMEOUT_MS = 10_000;

export function defaultAppManifests(): ManifestDoc[] {
  return parseManifestText(readFileSync(DEFAULT_APP, 'utf8'), 'embedded default app');
}

function manifestsOf(files: string[]): ManifestDoc[] {
  return files.length ? loadManifests(files) : defaultAppManifests();
}

export class Lab {
  /** mtime of the record as this object last wrote it (setPodReady skips re-reading it then). */
  private recordStamp: number | undefined;

  private constructor(
    readonly topology: LabTopology,
    private record: ClusterRecord,
    readonly stateDir: string,
  ) {}

  get config(): LabConfig {
    return this.record.config;
  }

  get state(): ClusterState {
    return this.record.state;
  }

  /** Creates the cluster. The manifests are validated before anything exists. */
  static async up(options: UpOptions): Promise<Lab> {
    const stateDir = resolveStateDir(options.stateDir);
    return withLabLock(stateDir, async () => {
      if (readCluster(stateDir)) {
        throw new LabError(`a lab is already up (${stateDir}): run 'sluice lab down' first`);
      }
      const config: LabConfig = {
        proxy: options.proxy,
        nodes: options.nodes,
        ...(options.labName ? { labName: options.labName } : {}),
        ...(options.iptablesBackend ? { iptablesBackend: options.iptablesBackend } : {}),
      };
      resetProxyState(stateDir);
      if (options.agentConfig) setAgentOverrides(stateDir, options.agentConfig);
      const state = applyObjects(emptyState(), manifestsOf(options.files), {
        nodes: options.nodes,
        congestionControls: availableCongestionControls(),
      });
      const topology = await LabTopology.create({
        stateDir,
        ...(options.labName ? { labName: options.labName } : {}),
      });
      const lab = new Lab(topology, { config, state: emptyState() }, stateDir);
      try {
        for (const [index, node] of [...state.nodes.values()].entries())
          await topology.addNode(node, index);
        await lab.converge(state);
      } catch (error) {
        await topology.destroy().catch(() => undefined);
        removeCluster(stateDir);
        throw error;
      }
      return lab;
    });
  }

  /** The lab recorded in the state directory. */
  static open(stateDir?: string): Lab {
    const dir = resolveStateDir(stateDir);
    const record = readCluster(dir);
    if (!record) throw new LabError(`no lab is up (${dir}): run 'sluice lab up' first`);
    return new Lab(LabTopology.open(dir), record, dir);
  }

  /** Removes everything a lab made, recorded or not; idempotent, works after a crash. */
  static async down(stateDir?: string, labName?: string): Promise<DestroyReport> {
    const dir = resolveStateDir(stateDir);
    const name = labName ?? readCluster(dir)?.config.labName;
    const report = await destroyLab({ stateDir: dir, ...(name ? { labName: name } : {}) });
    removeCluster(dir);
    resetProxyState(dir);
    return report;
  }

  async apply(files: string[]): Promise<void> {
    await this.change((state) =>
      applyObjects(state, loadManifests(files), {
        nodes: this.config.nodes,
        congestionControls: availableCongestionControls(),
      }),
    );
  }

  async delete(files: string[]): Promise<void> {
    await this.change((state) => deleteObjects(state, refsOf(loadManifests(files))));
  }

  async setPod(key: ObjectKey, action: PodAction): Promise<void> {
    const conditions =
      action === 'terminate' ? { terminating: true } : { ready: action === 'ready' };
    await this.change((state) => setPodConditions(state, key, conditions));
  }

  /**
   * One pod's readiness changes, and nothing else: the one EndpointSlice change a kubelet's
   * readiness probe makes, at the rate a benchmark can drive. The proxies get an incremental
   * sync of the services whose EndpointSlices changed (kube-proxy's partial sync, the agents'
   * diff: syncProxiesPartial) instead of the full converge of setPod, and the record is re-read
   * only when another command wrote it since. The pod keeps running and serving (it was never
   * stopped). With `save: false` the record is written by a later save() instead (a benchmark
   * making many changes; other commands see the lab as it was until then).
   */
  async setPodReady(
    key: ObjectKey,
    ready: boolean,
    options: { save?: boolean } = {},
  ): Promise<PodReadyResult> {
    return withLabLock(this.stateDir, async () => {
      const stamp = recordMtime(this.stateDir);
      if (stamp === undefined || stamp !== this.recordStamp) {
        const current = readCluster(this.stateDir);
        if (current) this.record = current;
        this.recordStamp = stamp;
      }
      const prev = this.record.state;
      const next = setPodConditions(prev, key, { ready });
      const services = changedServices(prev, next);
      const t = performance.now();
      if (services.length > 0) {
        await syncProxiesPartial(this.topology, this.stateDir, next, this.config, services);
      }
      const syncMs = performance.now() - t;
      this.record = { config: this.config, state: next };
      if (options.save ?? true) this.saveRecord();
      return { services, syncMs };
    });
  }

  /** Writes the record setPodReady({ save: false }) left unwritten. */
  async save(): Promise<void> {
    await withLabLock(this.stateDir, () => {
      this.saveRecord();
      return Promise.resolve();
    });
  }

  private saveRecord(): void {
    writeCluster(this.stateDir, this.record);
    this.recordStamp = recordMtime(this.stateDir);
  }

  /** Computes the next state (which validates it) under the lock, then converges to it. */
  private async change(next: (state: ClusterState) => ClusterState): Promise<void> {
    await withLabLock(this.stateDir, async () => {
      // Re-read: another command may have changed the lab since this one opened it.
      const current = readCluster(this.stateDir);
      if (current) this.record = current;
      await this.converge(next(this.record.state));
    });
  }

  /**
   * Makes the running lab match `next`: pods that went away stop first, new pods start and are
   * waited for until they serve, then every node's proxy is programmed, and the record saved.
   */
  private async converge(next: ClusterState): Promise<void> {
    const prev = this.record.state;
    if (!next.nodes.size) throw new LabError('the cluster has no nodes');
    const gone = [...prev.pods.keys()].filter(
      (k) => !next.pods.has(k) || workloadChanged(prev.pods.get(k), next.pods.get(k)),
    );
    for (const key of gone) {
      if (!this.topology.hasPod(key)) continue;
      await stopWorkload(this.topology, key);
      await this.topology.removePod(key);
    }
    const fresh = [...next.pods.entries()]
      .filter(([key, pod]) => !pod.virtual && !this.topology.hasPod(key))
      .map(([, pod]) => pod);
    if (fresh.length > 0) {
      await this.topology.addPods(fresh);
      for (const pod of fresh) startWorkload(this.topology, pod);
      await Promise.all(
        fresh.map((pod) =>
          waitListening(this.topology, objectKey(pod.namespace, pod.name), servedPorts(pod), {
            timeoutMs: SERVE_TIMEOUT_MS,
          }),
        ),
      );
    }
    // externalIPs reach the cluster the way a router would send them: to a node.
    const routed = externalIPsOf(prev);
    for (const ip of externalIPsOf(next)) {
      if (!routed.has(ip)) await this.topology.addExternalRoute(`${ip}/32`);
    }
    await syncProxies(this.topology, this.stateDir, next, this.config);
    this.record = { config: this.config, state: next };
    writeCluster(this.stateDir, this.record);
  }
}

function servedPorts(pod: Pod): PortRef[] {
  return pod.containers.flatMap((c) =>
    c.ports.map((p) => ({ port: p.containerPort, protocol: p.protocol })),
  );
}

function externalIPsOf(state: ClusterState): Set<string> {
  return new Set([...state.services.values()].flatMap((s) => s.externalIPs));
}

function workloadChanged(a: Pod | undefined, b: Pod | undefined): boolean {
  if (!a || !b) return false;
  return (
    a.nodeName !== b.nodeName ||
    a.ip !== b.ip ||
    JSON.stringify(a.containers) !== JSON.stringify(b.containers)
  );
}

function recordMtime(stateDir: string): number | undefined {
  try {
    return statSync(clusterPath(stateDir)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Services (namespace/name) whose EndpointSlices differ between two states. */
export function changedServices(prev: ClusterState, next: ClusterState): string[] {
  const out = new Set<string>();
  for (const key of new Set([...prev.endpointSlices.keys(), ...next.endpointSlices.keys()])) {
    const a = prev.endpointSlices.get(key);
    const b = next.endpointSlices.get(key);
    if (a === b || JSON.stringify(a) === JSON.stringify(b)) continue;
    const slice = b ?? a;
    const service = slice?.labels[SERVICE_NAME_LABEL];
    if (slice && service) out.add(`${slice.namespace}/${service}`);
  }
  return [...out].sort();
}
