/**
 * The Kubernetes API source: informers (list + watch, @kubernetes/client-node) on Services,
 * EndpointSlices, Nodes, Namespaces and Pods, and on the custom resources socket acceleration
 * reads (TrafficOptimization sluice.io/v1alpha1, CiliumNetworkPolicy cilium.io/v2 for its tcp
 * block), kept as one ClusterState that every snapshot hands on, each event saying which object
 * changed (so the agent re-plans one Service).
 *
 * - Configuration: KUBECONFIG (or ~/.kube/config), else the in-cluster service account
 *   (KubeConfig.loadFromDefault), unless a KubeConfig is given.
 * - Objects are read with the same rules as the manifests source (clusterStateFromDocs, one
 *   object at a time): a bad object is skipped with its reason and its API path; the others
 *   are used. NodePorts are not checked for duplicates across Services: the API server already
 *   allocates them uniquely.
 * - An object whose normalized form did not change (a Node's status heartbeat, a Pod's status)
 *   is not a change: no snapshot for it. Pods and Namespaces are kept in the state but change
 *   nothing the agent programs.
 * - The first snapshot waits for every informer's initial list (an unreachable API server is
 *   retried, logged, and never stands in as an empty cluster). A list or watch that fails is
 *   restarted (re-list, then watch) with backoff; until then the last known objects stay.
 * - A custom resource whose CRD is not installed (its list answers 404) is a definite answer,
 *   not a failure: none of those objects exist. It is logged once, does not hold back the first
 *   snapshot nor the other informers, and is listed again with the same backoff, so a CRD
 *   installed later is picked up.
 * - Policies are kept by namespace/name (as in the manifests source): when a TrafficOptimization
 *   and a CiliumNetworkPolicy share one, the TrafficOptimization is kept and the other skipped
 *   (reported) until the name is free again. A policy change names no Service: its snapshot
 *   carries an empty change set, and the agent's socket acceleration re-reads the policies.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  makeInformer,
} from '@kubernetes/client-node';
import type { ClusterState, ObjectKey, Pod, Policy } from '../model/index.js';
import { emptyState, objectKey } from '../model/index.js';
import { LatestChannel } from './latest.js';
import type { SourceLogger, StateOptions } from './manifests.js';
import { clusterStateFromDocs } from './manifests.js';
import type { SkippedObject, Source, SourceChanges, SourceSnapshot } from './source.js';
import { coalesceSnapshots } from './source.js';

export interface KubernetesSourceOptions extends StateOptions {
  /** Default: KubeConfig.loadFromDefault() (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeConfig?: KubeConfig;
  logger?: SourceLogger;
  /** First delay before a failed informer is restarted; doubled up to 30 s. Default 1 s. */
  restartMs?: number;
}

type PolicyKind = 'TrafficOptimization' | 'CiliumNetworkPolicy';
type Kind = 'Service' | 'EndpointSlice' | 'Node' | 'Namespace' | 'Pod' | PolicyKind;

/** The custom resources watched: group, version and plural of their collection. */
export const CUSTOM_RESOURCES: readonly {
  kind: PolicyKind;
  group: string;
  version: string;
  plural: string;
}[] = [
  {
    kind: 'TrafficOptimization',
    group: 'sluice.io',
    version: 'v1alpha1',
    plural: 'trafficoptimizations',
  },
  {
    kind: 'CiliumNetworkPolicy',
    group: 'cilium.io',
    version: 'v2',
    plural: 'ciliumnetworkpolicies',
  },
];

interface Watched {
  kind: Kind;
  apiVersion: string;
  /** The collection's path, for the watch and for skipped objects' `where`. */
  path: string;
  namespaced: boolean;
  /** A custom resource: its list answering 404 means the CRD is not installed. */
  custom?: boolean;
  list: () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>;
}

/** The HTTP status of a failed list (ApiException.code) or watch (Error.statusCode). */
function httpStatus(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === 'number') return e.code;
  return typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

export class KubernetesSource implements Source {
  readonly description = 'kubernetes';
  private readonly channel = new LatestChannel<SourceSnapshot>(coalesceSnapshots);
  private readonly state: ClusterState = emptyState();
  private readonly skipped = new Map<string, SkippedObject>();
  private readonly informers: { stop(): Promise<void> }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly resourceVersions = new Map<Kind, string>();
  /** Policies by kind, then namespace/name; state.policies holds the one kept per name. */
  private readonly policies = new Map<PolicyKind, Map<ObjectKey, Policy>>([
    ['TrafficOptimization', new Map()],
    ['CiliumNetworkPolicy', new Map()],
  ]);
  /** Custom resources whose CRD answered 404 (logged once; listed again with backoff). */
  private readonly missing = new Set<Kind>();
  private generation = 0;
  private started = false;
  private synced = false;
  private closed = false;

  constructor(private readonly options: KubernetesSourceOptions = {}) {
    // The API server's namespaces, not the lab's default one.
    this.state.namespaces.clear();
  }

  snapshots(): AsyncIterableIterator<SourceSnapshot, undefined> {
    if (!this.started) {
      this.started = true;
      void this.start();
    }
    return this.channel;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.channel.close();
    await Promise.allSettled(this.informers.map((i) => i.stop()));
  }

  private async start(): Promise<void> {
    let kc = this.options.kubeConfig;
    try {
      if (!kc) {
        kc = new KubeConfig();
        kc.loadFromDefault();
      }
      const core = kc.makeApiClient(CoreV1Api);
      const discovery = kc.makeApiClient(DiscoveryV1Api);
      const custom = kc.makeApiClient(CustomObjectsApi);
      const watched: Watched[] = [
        {
          kind: 'Namespace',
          apiVersion: 'v1',
          path: '/api/v1/namespaces',
          namespaced: false,
          list: () => core.listNamespace(),
        },
        {
          kind: 'Node',
          apiVersion: 'v1',
          path: '/api/v1/nodes',
          namespaced: false,
          list: () => core.listNode(),
        },
        {
          kind: 'Service',
          apiVersion: 'v1',
          path: '/api/v1/services',
          namespaced: true,
          list: () => core.listServiceForAllNamespaces(),
        },
        {
          kind: 'EndpointSlice',
          apiVersion: 'discovery.k8s.io/v1',
          path: '/apis/discovery.k8s.io/v1/endpointslices',
          namespaced: true,
          list: () => discovery.listEndpointSliceForAllNamespaces(),
        },
        {
          kind: 'Pod',
          apiVersion: 'v1',
          path: '/api/v1/pods',
          namespaced: true,
          list: () => core.listPodForAllNamespaces(),
        },
        ...CUSTOM_RESOURCES.map((r): Watched => ({
          kind: r.kind,
          apiVersion: `${r.group}/${r.version}`,
          path: `/apis/${r.group}/${r.version}/${r.plural}`,
          namespaced: true,
          custom: true,
          list: () =>
            custom.listCustomObjectForAllNamespaces({
              group: r.group,
              version: r.version,
              plural: r.plural,
            }) as Promise<{
              items: KubernetesObject[];
              metadata?: { resourceVersion?: string };
            }>,
        })),
      ];
      await Promise.all(watched.map((w) => this.startInformer(kc as KubeConfig, w)));
    } catch (error) {
      this.channel.fail(error);
      return;
    }
    if (this.closed) return;
    this.synced = true;
    this.emit(undefined);
  }

  private async startInformer(kc: KubeConfig, w: Watched): Promise<void> {
    let listed: () => void = () => undefined;
    const firstList = new Promise<void>((resolve) => (listed = resolve));
    let delay = this.options.restartMs ?? 1000;
    // Reset by a good list or a watch event, not by 'connect': the informer reports 'connect'
    // before every list, so a list that keeps failing (a CRD not installed) would never back off.
    const working = () => (delay = this.options.restartMs ?? 1000);
    const list = async () => {
      let result: Awaited<ReturnType<Watched['list']>>;
      try {
        result = await w.list();
      } catch (error) {
        if (w.custom && httpStatus(error) === 404) {
          this.notInstalled(w);
          listed();
        }
        throw error; // reported as 'error': restarted with backoff below
      }
      if (this.served(w)) {
        // The informer's cache may still hold objects dropped when the CRD went away, and
        // would not report them again: take the whole list here.
        for (const item of result.items ?? []) this.upsert(w, item);
      }
      this.resourceVersions.set(w.kind, result.metadata?.resourceVersion ?? '');
      working();
      listed();
      return result as never;
    };
    const informer = makeInformer<KubernetesObject>(kc, w.path, list);
    const upsert = (o: KubernetesObject) => {
      working();
      this.served(w);
      this.upsert(w, o);
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (o) => {
      working();
      this.remove(w, o);
    });
    informer.on('error', (err: unknown) => {
      if (this.closed) return;
      if (w.custom && httpStatus(err) === 404) {
        // A list, or a watch once the CRD was deleted: logged once, the retries stay quiet.
        this.notInstalled(w);
        this.options.logger?.debug({ resource: w.path, retryInMs: delay }, 'not installed');
      } else {
        this.options.logger?.warn(
          { err, resource: w.path, retryInMs: delay },
          'watch failed; the last known objects stay until it is back',
        );
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.closed) informer.start().catch(() => undefined); // errors come back as 'error'
      }, delay);
      this.timers.add(timer);
      delay = Math.min(delay * 2, 30_000);
    });
    this.informers.push(informer);
    // A failed list does not reject start(): it reports 'error' (and is retried above). The
    // first snapshot waits for a good list of every collection, never an empty stand-in.
    await informer.start();
    await firstList;
  }

  /** The CRD is not installed: none of its objects exist (they are dropped, if any were). */
  private notInstalled(w: Watched): void {
    if (this.missing.has(w.kind)) return;
    this.missing.add(w.kind);
    this.resourceVersions.set(w.kind, 'absent');
    this.options.logger?.warn(
      { resource: w.path, kind: w.kind },
      `${w.kind} (${w.apiVersion}) is not installed in the cluster (${w.path}: 404); ` +
        'the other resources are watched, and it is listed again with backoff',
    );
    const store = this.policies.get(w.kind as PolicyKind);
    let changed = false;
    for (const key of [...(store?.keys() ?? [])]) {
      store?.delete(key);
      changed = this.settlePolicy(key) || changed;
    }
    for (const [where, s] of [...this.skipped]) {
      if (s.kind === w.kind) changed = this.skipped.delete(where) || changed;
    }
    if (changed) this.emit(noChanges());
  }

  /** Whether the resource was not installed until now (logged when so). */
  private served(w: Watched): boolean {
    if (!this.missing.delete(w.kind)) return false;
    this.options.logger?.warn(
      { resource: w.path, kind: w.kind },
      `${w.kind} (${w.apiVersion}) is served now: watching it`,
    );
    return true;
  }

  private where(w: Watched, o: KubernetesObject): string {
    const ns = o.metadata?.namespace ?? '';
    const name = o.metadata?.name ?? '';
    const collection = w.path.slice(w.path.lastIndexOf('/') + 1);
    const base = w.path.slice(0, w.path.lastIndexOf('/'));
    return w.namespaced ? `${base}/namespaces/${ns}/${collection}/${name}` : `${w.path}/${name}`;
  }

  private key(w: Watched, o: KubernetesObject): ObjectKey {
    const name = o.metadata?.name ?? '';
    return w.namespaced ? objectKey(o.metadata?.namespace ?? '', name) : name;
  }

  private noteVersion(w: Watched, o: KubernetesObject): void {
    const rv = o.metadata?.resourceVersion;
    if (rv) this.resourceVersions.set(w.kind, rv);
  }

  private upsert(w: Watched, raw: KubernetesObject): void {
    this.noteVersion(w, raw);
    // Plain JSON (dates as strings), with the kind list items lack.
    const object: Obj = {
      ...(JSON.parse(JSON.stringify(raw)) as Obj),
      kind: w.kind,
      apiVersion: w.apiVersion,
    };
    const where = this.where(w, raw);
    const key = this.key(w, raw);
    const changes = noChanges();
    let changed = false;
    const hadSkip = this.skipped.delete(where);
    switch (w.kind) {
      case 'Namespace': {
        const meta = asObj(object.metadata) ?? {};
        const labels = (asObj(meta.labels) ?? {}) as Record<string, string>;
        // Socket acceleration reads sluice.io/accelerate; nothing else of them is used.
        const annotations = (asObj(meta.annotations) ?? {}) as Record<string, string>;
        changed = this.put(this.state.namespaces, key, {
          name: key,
          labels,
          ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        });
        break;
      }
      case 'TrafficOptimization':
      case 'CiliumNetworkPolicy': {
        const { state, skipped } = this.parse(where, object);
        const store = this.policies.get(w.kind) as Map<ObjectKey, Policy>;
        const value = state.policies.get(key);
        if (value === undefined) {
          for (const s of skipped) this.skipped.set(where, { ...s, where });
          store.delete(key);
        } else {
          store.set(key, value);
        }
        changed = this.settlePolicy(key);
        break;
      }
      case 'Pod':
        changed = this.put(this.state.pods, key, podFromObject(object));
        break;
      default: {
        const { state, skipped } = this.parse(where, object);
        const value =
          w.kind === 'Service'
            ? state.services.get(key)
            : w.kind === 'EndpointSlice'
              ? state.endpointSlices.get(key)
              : state.nodes.get(key);
        const map = (
          w.kind === 'Service'
            ? this.state.services
            : w.kind === 'EndpointSlice'
              ? this.state.endpointSlices
              : this.state.nodes
        ) as Map<string, unknown>;
        if (value === undefined) {
          for (const s of skipped) this.skipped.set(where, { ...s, where });
          changed = map.delete(key);
        } else {
          changed = this.put(map, key, value);
        }
        if (changed) changesOf(changes, w.kind).add(key);
      }
    }
    if (changed || hadSkip !== this.skipped.has(where)) this.emit(changes);
  }

  private remove(w: Watched, raw: KubernetesObject): void {
    this.noteVersion(w, raw);
    const key = this.key(w, raw);
    const hadSkip = this.skipped.delete(this.where(w, raw));
    if (w.kind === 'TrafficOptimization' || w.kind === 'CiliumNetworkPolicy') {
      this.policies.get(w.kind)?.delete(key);
      if (this.settlePolicy(key) || hadSkip) this.emit(noChanges());
      return;
    }
    const map = {
      Namespace: this.state.namespaces,
      Pod: this.state.pods,
      Service: this.state.services,
      EndpointSlice: this.state.endpointSlices,
      Node: this.state.nodes,
    }[w.kind] as Map<string, unknown>;
    const changes = noChanges();
    const changed = map.delete(key);
    if (changed && w.kind !== 'Namespace' && w.kind !== 'Pod') changesOf(changes, w.kind).add(key);
    if (changed || hadSkip) this.emit(changes);
  }

  /** One object read with the manifests source's rules. */
  private parse(where: string, object: Obj): ReturnType<typeof clusterStateFromDocs> {
    return clusterStateFromDocs([{ source: { file: where, index: -1 }, object }], this.options);
  }

  /**
   * Which policy state.policies keeps for namespace/name: the TrafficOptimization if there is
   * one, else the CiliumNetworkPolicy; the one shadowed is reported as skipped. Whether the kept
   * policy changed.
   */
  private settlePolicy(key: ObjectKey): boolean {
    const to = this.policies.get('TrafficOptimization')?.get(key);
    const cnp = this.policies.get('CiliumNetworkPolicy')?.get(key);
    const [ns = '', name = ''] = key.split('/');
    const cnpWhere = `/apis/cilium.io/v2/namespaces/${ns}/ciliumnetworkpolicies/${name}`;
    if (to && cnp) {
      this.skipped.set(cnpWhere, {
        where: cnpWhere,
        kind: 'CiliumNetworkPolicy',
        name: key,
        reason: `metadata.name: a TrafficOptimization with this name is also given (/apis/sluice.io/v1alpha1/namespaces/${ns}/trafficoptimizations/${name}); sluice keeps policies by namespace/name`,
      });
    } else if (this.skipped.get(cnpWhere)?.reason.includes('also given')) {
      this.skipped.delete(cnpWhere);
    }
    const kept = to ?? cnp;
    if (kept === undefined) return this.state.policies.delete(key);
    return this.put(this.state.policies, key, kept);
  }

  /** Stores the value; whether it differs from what was there. */
  private put<T>(map: Map<string, T>, key: string, value: T): boolean {
    const old = map.get(key);
    map.set(key, value);
    return old === undefined || JSON.stringify(old) !== JSON.stringify(value);
  }

  private emit(changes: SourceChanges | undefined): void {
    if (!this.synced || this.closed) return; // the first snapshot (after every list) has it all
    this.generation += 1;
    const snapshot: SourceSnapshot = {
      generation: this.generation,
      digest: this.digest(),
      state: this.state,
      skipped: [...this.skipped.values()].sort((a, b) => (a.where < b.where ? -1 : 1)),
    };
    if (changes) snapshot.changes = changes;
    this.channel.put(snapshot);
  }

  /** The resource versions the state reflects: the same digest means the same objects. */
  private digest(): string {
    const hash = createHash('sha256');
    for (const [kind, rv] of [...this.resourceVersions].sort()) hash.update(`${kind}=${rv}\0`);
    return hash.digest('hex');
  }
}

function noChanges(): { services: Set<string>; endpointSlices: Set<string>; nodes: Set<string> } {
  return { services: new Set(), endpointSlices: new Set(), nodes: new Set() };
}

function changesOf(changes: ReturnType<typeof noChanges>, kind: Kind): Set<string> {
  return kind === 'Service'
    ? changes.services
    : kind === 'EndpointSlice'
      ? changes.endpointSlices
      : changes.nodes;
}

/** What the state keeps of a Pod: the agent programs nothing from it (EndpointSlices do). */
function podFromObject(o: Obj): Pod {
  const meta = asObj(o.metadata) ?? {};
  const spec = asObj(o.spec) ?? {};
  const status = asObj(o.status) ?? {};
  const conditions = Array.isArray(status.conditions) ? status.conditions.map(asObj) : [];
  const ready = conditions.some((c) => c?.type === 'Ready' && c.status === 'True');
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    namespace: str(meta.namespace),
    name: str(meta.name),
    labels: (asObj(meta.labels) ?? {}) as Record<string, string>,
    annotations: {},
    uid: str(meta.uid),
    nodeName: str(spec.nodeName),
    ip: str(status.podIP),
    containers: [],
    conditions: { ready, terminating: meta.deletionTimestamp !== undefined },
    virtual: false,
  };
}
