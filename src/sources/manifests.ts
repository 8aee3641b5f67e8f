/**
 * The manifests-directory source: the Nodes, Services and EndpointSlices found in a directory
 * of YAML/JSON manifests (read like `kubectl apply -R`), watched with fs.watch and re-read after
 * a short debounce. It is what the lab and standalone users run the agent with.
 *
 * Unlike `sluice lab apply`, nothing is allocated or computed here: kube-proxy sees objects the
 * API server already completed, so Services must carry their ClusterIP, NodePorts and
 * load-balancer ingress (status.loadBalancer.ingress[0].ip, else spec.loadBalancerIP), and
 * EndpointSlices are taken as given. The model's controllers do not run.
 *
 * Robustness rules, because the directory is edited while the agent runs:
 * - An invalid object (bad port, unknown protocol, NodePort out of range or taken by an earlier
 *   object, an IPv6 address, a Service without its allocations) is skipped and reported; the
 *   others are used. Files are read in code-point order, so "earlier" is well defined.
 * - A file with a YAML/JSON syntax error keeps the objects of its last good read: a half-written
 *   file must not withdraw every service it declares. Its problems are still reported.
 * - Kinds kube-proxy does not watch (Pods, Deployments, policies, ...) are ignored.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import type { Addressing, ClusterState, ManifestDoc, ManifestProblem } from '../model/index.js';
import {
  ENDPOINTSLICE_CONTROLLER,
  MANAGED_BY_LABEL,
  checkManifests,
  emptyState,
  listManifestFiles,
  objectKey,
  parseIPv4,
  parseManifests,
} from '../model/index.js';
import { SourceError } from './errors.js';
import { LatestChannel } from './latest.js';
import type { SkippedObject, Source, SourceSnapshot } from './source.js';
import { changedObjects, coalesceSnapshots } from './source.js';

export interface NodePortRange {
  min: number;
  max: number;
}

export const DEFAULT_NODE_PORT_RANGE: NodePortRange = { min: 30000, max: 32767 };

/**
 * The kinds kube-proxy watches, plus what socket acceleration needs (Namespaces for their
 * annotation, Pods for their address and labels, TrafficOptimizations and the tcp block of
 * CiliumNetworkPolicies); every other kind in the directory is ignored.
 */
export const WATCHED_KINDS = [
  'Node',
  'Service',
  'EndpointSlice',
  'Namespace',
  'Pod',
  'TrafficOptimization',
  'CiliumNetworkPolicy',
] as const;

/** The subset of a pino logger a source reports through. */
export interface SourceLogger {
  warn(object: object, message: string): void;
  debug(object: object, message: string): void;
}

/**
 * The model's validation checks addresses against the lab's address plan. The agent serves any
 * cluster, so every range is "anywhere" (only the family is checked: IPv4), except the NodePort
 * range, which is configuration.
 */
export function agentAddressing(nodePortRange: NodePortRange): Addressing {
  return {
    fabricCIDR: '0.0.0.0/0',
    podCIDRBase: '0.0.0.0/0',
    serviceCIDR: '0.0.0.0/0',
    loadBalancerPool: '0.0.0.0/0',
    nodePortRange: { ...nodePortRange },
  };
}

/** What a reader of manifest text hands on: the file name relative to the directory. */
export interface ManifestFile {
  name: string;
  content: string;
}

/** The digest a snapshot reports: sha256 over the files' relative names and contents. */
export function manifestsDigest(files: readonly ManifestFile[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => compare(a.name, b.name))) {
    hash.update(f.name).update('\0').update(f.content).update('\0');
  }
  return hash.digest('hex');
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

/**
 * The ClusterState the given documents describe, and the objects left out. Pure: the unit of
 * the source that tests drive directly.
 */
export function clusterStateFromDocs(
  docs: readonly ManifestDoc[],
  options: { nodePortRange?: NodePortRange; congestionControls?: readonly string[] } = {},
): { state: ClusterState; skipped: SkippedObject[] } {
  const watched = docs.filter((d) =>
    (WATCHED_KINDS as readonly unknown[]).includes(asObj(d.object)?.kind),
  );
  const addressing = agentAddressing(options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE);
  const { valid, problems } = checkManifests(watched, {
    addressing,
    ...(options.congestionControls ? { congestionControls: options.congestionControls } : {}),
  });
  const problemsByDoc = new Map<string, ManifestProblem[]>();
  const where = (file: string, index: number): string => (index < 0 ? file : `${file}#${index}`);
  for (const p of problems) {
    const key = where(p.file, p.index);
    problemsByDoc.set(key, [...(problemsByDoc.get(key) ?? []), p]);
  }

  const state = emptyState();
  const skip = (p: ManifestProblem): void => {
    const key = where(p.file, p.index);
    problemsByDoc.set(key, [...(problemsByDoc.get(key) ?? []), p]);
  };
  for (const doc of valid) {
    // Cross-document problems (a NodePort or ClusterIP taken by an earlier object) leave the
    // document in `valid`: it is skipped all the same.
    if (problemsByDoc.has(where(doc.source.file, doc.source.index))) continue;
    const base = {
      file: doc.source.file,
      index: doc.source.index,
      kind: doc.kind,
      namespace: doc.namespace,
      name: doc.name,
    };
    const n = doc.normalized;
    if (n.kind === 'Node') {
      const { name, labels, ip = '', podCIDR = '' } = n.value;
      state.nodes.set(name, { name, labels, ip, podCIDR });
    } else if (n.kind === 'Service') {
      const svc = { ...n.value };
      const problem = serviceAllocationProblem(svc, asObj(doc.object.status));
      if (problem) {
        skip({ ...base, ...problem });
        continue;
      }
      if (svc.type === 'LoadBalancer') {
        const ingress = ingressIP(asObj(doc.object.status));
        if (ingress !== undefined) svc.loadBalancerIP = ingress;
      }
      state.services.set(objectKey(svc.namespace, svc.name), svc);
    } else if (n.kind === 'EndpointSlice') {
      const slice = {
        ...n.value,
        managed: n.value.labels[MANAGED_BY_LABEL] === ENDPOINTSLICE_CONTROLLER,
      };
      state.endpointSlices.set(objectKey(slice.namespace, slice.name), slice);
    } else if (n.kind === 'Namespace') {
      state.namespaces.set(n.value.name, n.value);
    } else if (n.kind === 'Pod') {
      // As the API server reports it: scheduled (spec.nodeName) and addressed (status.podIP).
      const ip = asObj(doc.object.status)?.podIP;
      const uid = asObj(doc.object.metadata)?.uid;
      const { nodeName = '' } = n.value;
      if (typeof ip === 'string' && nodeName !== '') {
        const pod = { ...n.value, nodeName, ip, uid: typeof uid === 'string' ? uid : '' };
        state.pods.set(objectKey(pod.namespace, pod.name), pod);
      }
    } else if (n.kind === 'TrafficOptimization' || n.kind === 'CiliumNetworkPolicy') {
      state.policies.set(objectKey(n.value.namespace, n.value.name), n.value);
    }
    if (doc.namespace !== '' && !state.namespaces.has(doc.namespace)) {
      state.namespaces.set(doc.namespace, {
        name: doc.namespace,
        labels: { 'kubernetes.io/metadata.name': doc.namespace },
      });
    }
  }

  const skipped: SkippedObject[] = [];
  for (const [key, list] of problemsByDoc) {
    const first = list[0];
    if (!first) continue;
    skipped.push({
      where: key,
      kind: first.kind,
      name:
        first.name === '' ? '' : first.namespace ? `${first.namespace}/${first.name}` : first.name,
      reason: list.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)).join('; '),
    });
  }
  skipped.sort((a, b) => compareWhere(a.where, b.where));
  return { state, skipped };
}

/** `file#index` in file order, then numerically by index. */
function compareWhere(a: string, b: string): number {
  const [fa = '', ia = '-1'] = a.split('#');
  const [fb = '', ib = '-1'] = b.split('#');
  return compare(fa, fb) || Number(ia) - Number(ib);
}

function ingressIP(status: Obj | undefined): string | undefined {
  const ingress = asObj(status?.loadBalancer)?.ingress;
  if (!Array.isArray(ingress)) return undefined;
  const ip = asObj(ingress[0])?.ip;
  return typeof ip === 'string' ? ip : undefined;
}

/** What kube-proxy can rely on the API server for, and a manifest may lack. */
function serviceAllocationProblem(
  svc: { type: string; clusterIP: string; ports: { nodePort?: number }[] } & {
    allocateLoadBalancerNodePorts?: boolean;
  },
  status: Obj | undefined,
): { path: string; message: string } | undefined {
  if (svc.type === 'ExternalName') return undefined;
  if (svc.clusterIP === '') {
    return {
      path: 'spec.clusterIP',
      message: 'not allocated: the agent programs the ClusterIP the API server allocated',
    };
  }
  const needsNodePorts =
    svc.type === 'NodePort' ||
    (svc.type === 'LoadBalancer' && svc.allocateLoadBalancerNodePorts !== false);
  if (needsNodePorts) {
    const i = svc.ports.findIndex((p) => p.nodePort === undefined);
    if (i >= 0) return { path: `spec.ports[${i}].nodePort`, message: 'not allocated' };
  }
  const ingress = ingressIP(status);
  if (ingress !== undefined && parseIPv4(ingress) === undefined) {
    return {
      path: 'status.loadBalancer.ingress[0].ip',
      message: `must be an IPv4 address, got ${JSON.stringify(ingress)}`,
    };
  }
  return undefined;
}

interface FileRead {
  content: string;
  docs: ManifestDoc[];
}

/**
 * One read of the directory. `lastGood` carries each file's last parse without syntax errors, by
 * name relative to the directory (the name problems and digests use).
 */
export function readManifestsDir(
  dir: string,
  lastGood: Map<string, FileRead>,
): { docs: ManifestDoc[]; problems: ManifestProblem[]; files: ManifestFile[] } {
  const { files, problems } = listManifestFiles([dir]);
  const docs: ManifestDoc[] = [];
  const read: ManifestFile[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (error) {
      // Removed between the listing and the read: the next event re-reads.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const name = relative(dir, file);
    seen.add(name);
    read.push({ name, content });
    const parsed = parseManifests(content, name);
    if (parsed.problems.length === 0) {
      lastGood.set(name, { content, docs: parsed.docs });
      // Loops, not push(...): spreading 200k documents into arguments overflows the stack.
      for (const doc of parsed.docs) docs.push(doc);
    } else {
      for (const problem of parsed.problems) problems.push(problem);
      for (const doc of lastGood.get(name)?.docs ?? []) docs.push(doc);
    }
  }
  for (const name of [...lastGood.keys()]) if (!seen.has(name)) lastGood.delete(name);
  return { docs, problems, files: read };
}

export interface ManifestsSourceOptions {
  nodePortRange?: NodePortRange;
  /** The kernel's congestion control algorithms: a TrafficOptimization asking for another is skipped. */
  congestionControls?: readonly string[];
  /** Quiet time after the last change before the directory is re-read. Default 100 ms. */
  debounceMs?: number;
  /** Re-read this often even without events (fs.watch can miss some). Default 30 s; 0: never. */
  resyncMs?: number;
  logger?: SourceLogger;
}

export class ManifestsSource implements Source {
  readonly description: string;
  private readonly channel = new LatestChannel<SourceSnapshot>(coalesceSnapshots);
  private previous: ClusterState | undefined;
  private readonly lastGood = new Map<string, FileRead>();
  /** One inotify watch per directory: Node 20's recursive fs.watch on Linux misses renames. */
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private generation = 0;
  private lastDigest = '';
  private started = false;

  constructor(
    readonly dir: string,
    private readonly options: ManifestsSourceOptions = {},
  ) {
    this.description = `manifests:${dir}`;
  }

  snapshots(): AsyncIterableIterator<SourceSnapshot, undefined> {
    if (!this.started) this.start();
    return this.channel;
  }

  close(): Promise<void> {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.debounce);
    clearInterval(this.resync);
    this.channel.close();
    return Promise.resolve();
  }

  private start(): void {
    this.started = true;
    if (!existsSync(this.dir) || !statSync(this.dir).isDirectory()) {
      this.channel.fail(new SourceError(`manifests directory ${this.dir} does not exist`));
      return;
    }
    // Watch before the first read, so a change made during the read is not missed.
    this.watchDirectories();
    const resyncMs = this.options.resyncMs ?? 30_000;
    if (resyncMs > 0) this.resync = setInterval(() => this.schedule(), resyncMs).unref();
    this.read();
  }

  /** Watches the directory and every subdirectory, dropping watches of removed ones. */
  private watchDirectories(): void {
    const dirs = new Set<string>();
    const walk = (dir: string): void => {
      dirs.add(dir);
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // removed meanwhile
      }
      for (const e of entries)
        if (e.isDirectory() && !e.name.startsWith('.')) walk(join(dir, e.name));
    };
    walk(this.dir);
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.schedule(); // the directory went away: re-read, re-watch
        });
        this.watchers.set(dir, w);
      } catch (error) {
        if (dir === this.dir) {
          this.channel.fail(new SourceError(`watching ${dir}: ${(error as Error).message}`));
        }
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.read(), this.options.debounceMs ?? 100);
  }

  private read(): void {
    let result: ReturnType<typeof readManifestsDir>;
    try {
      this.watchDirectories();
      result = readManifestsDir(this.dir, this.lastGood);
    } catch (error) {
      this.options.logger?.warn(
        { err: error, source: this.description },
        'cannot read the manifests directory; retrying',
      );
      this.schedule();
      return;
    }
    const digest = manifestsDigest(result.files);
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    const { state, skipped } = clusterStateFromDocs(result.docs, this.options);
    for (const p of result.problems) {
      skipped.push({
        where: p.index < 0 ? p.file : `${p.file}#${p.index}`,
        kind: p.kind,
        name: p.name,
        reason: `${p.message}${this.lastGood.has(p.file) ? ' (the last good version of the file is kept)' : ''}`,
      });
    }
    this.generation += 1;
    this.options.logger?.debug(
      { generation: this.generation, digest, files: result.files.length },
      'manifests read',
    );
    const snapshot: SourceSnapshot = { generation: this.generation, digest, state, skipped };
    // Objects are compared with the previous read, so the agent re-plans only what changed.
    if (this.previous) snapshot.changes = changedObjects(this.previous, state);
    this.previous = state;
    this.channel.put(snapshot);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
