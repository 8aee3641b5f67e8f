/**
 * The desired datapath of one node, computed from kube-proxy's per-node view (pure).
 *
 * Every service port has frontends in two scopes (bpf/include/lb.h):
 * - INTERNAL: its ClusterIP, for traffic from inside the cluster (internalTrafficPolicy);
 * - EXTERNAL: the NodePort on this node's address, each load-balancer ingress address and each
 *   externalIP (externalTrafficPolicy).
 * Each frontend draws from a backend *group*: the set kube-proxy's CategorizeEndpoints picks for
 * its traffic policy — clusterEndpoints (ready, else serving+terminating, anywhere) for Cluster,
 * localEndpoints (the same rule, this node only) for Local. Frontends of one service port whose
 * policy selects the same set share one group, so one endpoint change rewrites one slot list,
 * and ClientIP affinity is shared by the ClusterIP and the NodePort (as kube-proxy shares it
 * through the endpoint chains). Groups are keyed by what they *mean* (port + policy), never by
 * their current members, so an endpoint change never renames a group.
 *
 * Nothing here has ids: diff.ts gives groups, backends and frontends their map ids from what
 * is programmed, so ids survive agent restarts.
 */
import { IPPROTO, LbBackendFlag, LbScope, LbServiceFlag } from '../datapath/lb.js';
import type {
  ClusterState,
  EndpointSlice,
  EndpointView,
  ObjectKey,
  Service,
  ServicePortView,
} from '../model/index.js';
import {
  categorizeEndpoints,
  compareIpPort,
  endpointSlicesByService,
  externalPolicyLocal,
  internalPolicyLocal,
  objectKey,
  parseIPv4,
  serviceViews,
} from '../model/index.js';
import type { BackendKey } from './backend-key.js';
import { backendKey, backendName, compareBackendKeys, protoName } from './backend-key.js';
import { BackendMap } from './backend-map.js';

export interface NodeInfo {
  name: string;
  /** The node's address (InternalIP): NodePorts listen on it. '' when unknown (no NodePorts). */
  ip: string;
}

/** The identity of a backend (its lb4_backends id follows it): see backend-key.ts. */
export type { BackendKey };
export { backendKey, backendName, protoName };
/** `address:port/PROTO/scope`, the identity of a frontend (an lb4_services key). */
export type FrontendKey = string;
/** `<service port id>/PROTO#cluster|local`: a backend set and its slot list. */
export type GroupKey = string;

export interface Lb4KeyValue {
  address: string;
  dport: number;
  proto: number;
  scope: number;
}

export interface BackendValue {
  address: string;
  port: number;
  proto: number;
  flags: number;
  /** The node the endpoint runs on; 0.0.0.0 when unknown. */
  node_address: string;
}

export interface PlannedFrontend {
  id: FrontendKey;
  key: Lb4KeyValue;
  /** kube-proxy's ServicePortName, for logs and listings. */
  servicePort: string;
  group: GroupKey;
  flags: number;
  /** Seconds; 0 without sessionAffinity ClientIP. */
  affinityTimeout: number;
}

export interface PlannedGroup {
  key: GroupKey;
  /** Sorted, each once. */
  backends: BackendKey[];
}

export interface DatapathPlan {
  readonly frontends: ReadonlyMap<FrontendKey, PlannedFrontend>;
  readonly groups: ReadonlyMap<GroupKey, PlannedGroup>;
  readonly backends: ReadonlyMap<BackendKey, BackendValue>;
  /** Frontends two service ports claim; the first (by service port id) keeps it. */
  readonly conflicts: { frontend: FrontendKey; kept: string; dropped: string }[];
}

export const PROTO_NUMBERS: Record<string, number> = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP };
export const scopeName = (scope: number): string =>
  scope === LbScope.INTERNAL ? 'internal' : 'external';

export const frontendKey = (k: Lb4KeyValue): FrontendKey =>
  `${k.address}:${k.dport}/${protoName(k.proto)}/${scopeName(k.scope)}`;

/** The plan of one node of the cluster: its proxy view, its address, every node's address. */
export function planForNode(state: ClusterState, nodeName: string): DesiredState {
  return DesiredState.fromState(state, nodeName);
}

/** Plans the node's datapath. Views come sorted from proxyView; the result is deterministic. */
export function planDatapath(
  views: readonly ServicePortView[],
  node: NodeInfo,
  nodeAddresses: ReadonlyMap<string, string> = new Map(),
): DesiredState {
  const desired = new DesiredState(node, nodeAddresses);
  const byService = new Map<ObjectKey, ServicePortView[]>();
  for (const view of views) {
    const key = objectKey(view.namespace, view.serviceName);
    const list = byService.get(key) ?? [];
    list.push(view);
    byService.set(key, list);
  }
  for (const [key, list] of byService) desired.setService(key, list);
  return desired;
}

/**
 * A group of a Service's plan with the values of its backends, index for index with
 * group.backends: two arrays, not a map per group (a full plan makes one for each of 10k groups).
 */
export interface GroupData {
  group: PlannedGroup;
  values: BackendValue[];
}

/** What one Service puts into the maps, before frontends two services claim are settled. */
export interface ServicePlan {
  /** Every frontend its ports claim, in view order. */
  claims: PlannedFrontend[];
  /** Every group its ports use, with the values of their backends: a few, so a list. */
  groups: GroupData[];
}

/** The plan of one Service's ports (views of one Service, in proxyView order). Pure. */
export function planService(
  views: readonly ServicePortView[],
  node: NodeInfo,
  nodeAddresses: ReadonlyMap<string, string>,
): ServicePlan {
  const plan: ServicePlan = { claims: [], groups: [] };
  for (const view of views) planServicePort(plan, view, node, nodeAddresses);
  return plan;
}

/**
 * Which map entries a change of the desired state may have changed: the agent diffs and writes
 * only these (diff.ts diffScoped). Sets of keys; a key may be present or gone afterwards.
 */
export interface AffectedKeys {
  frontends: Set<FrontendKey>;
  groups: Set<GroupKey>;
  backends: Set<BackendKey>;
}

export const noneAffected = (): AffectedKeys => ({
  frontends: new Set(),
  groups: new Set(),
  backends: new Set(),
});

/** A set that keeps nothing: the affected keys of a whole plan, which nobody reads. */
class DiscardSet<T> extends Set<T> {
  override add(): this {
    return this;
  }
}
const IGNORED: AffectedKeys = {
  frontends: new DiscardSet(),
  groups: new DiscardSet(),
  backends: new DiscardSet(),
};

/**
 * A backend of the plan: its value (from the first group that listed it) and the groups in the
 * plan listing it, in the order they came: usually one, held as a bare key (no array for each
 * of a million backends).
 */
interface BackendEntry {
  value: BackendValue;
  owners: GroupKey | GroupKey[];
}

/** The values of the plan's backend entries, as the diff reads them (a read-only map). */
class BackendValues implements ReadonlyMap<BackendKey, BackendValue> {
  constructor(private readonly held: ReadonlyMap<BackendKey, BackendEntry>) {}

  get size(): number {
    return this.held.size;
  }

  get(key: BackendKey): BackendValue | undefined {
    return this.held.get(key)?.value;
  }

  has(key: BackendKey): boolean {
    return this.held.has(key);
  }

  forEach(
    callback: (
      value: BackendValue,
      key: BackendKey,
      map: ReadonlyMap<BackendKey, BackendValue>,
    ) => void,
    thisArg?: unknown,
  ): void {
    this.held.forEach((entry, key) => callback.call(thisArg, entry.value, key, this));
  }

  keys(): MapIterator<BackendKey> {
    return this.held.keys();
  }

  *values(): MapIterator<BackendValue> {
    for (const entry of this.held.values()) yield entry.value;
  }

  *entries(): MapIterator<[BackendKey, BackendValue]> {
    for (const [key, entry] of this.held) yield [key, entry.value];
  }

  [Symbol.iterator](): MapIterator<[BackendKey, BackendValue]> {
    return this.entries();
  }
}

/**
 * The desired datapath of the node, kept per Service so one Service is re-planned at a time.
 * It is a DatapathPlan (frontends, groups, backends as the diff reads them), maintained
 * incrementally:
 *
 * - a frontend two service ports claim goes to the first by service port id (as in a full
 *   plan); when the winner goes away the next claim takes over;
 * - a group is in the plan while a winning frontend uses it, a backend while a group in the plan
 *   lists it (the same pod port behind several services: one backend, its value from the
 *   first group that listed it).
 *
 * setService costs O(size of that Service): nothing else is visited.
 */
export class DesiredState implements DatapathPlan {
  readonly frontends = new Map<FrontendKey, PlannedFrontend>();
  readonly groups = new Map<GroupKey, PlannedGroup>();
  /** Each backend of the plan with the groups listing it: one map, one lookup per backend. */
  private readonly backendEntries: BackendMap<BackendEntry>;
  readonly backends: ReadonlyMap<BackendKey, BackendValue>;
  private readonly services = new Map<ObjectKey, ServicePlan>();
  private readonly groupData = new Map<GroupKey, GroupData>();
  /** Claims per frontend, ordered by service port id (stable): the first one is programmed. */
  private readonly claims = new Map<FrontendKey, PlannedFrontend[]>();
  private readonly conflicted = new Set<FrontendKey>();
  /** Winning frontends per group. */
  private readonly groupRefs = new Map<GroupKey, number>();

  /** expectedBackends: about how many backends the plan will hold (BackendMap's capacity). */
  constructor(
    readonly node: NodeInfo,
    private nodeAddresses: ReadonlyMap<string, string> = new Map(),
    expectedBackends = 0,
  ) {
    this.backendEntries = new BackendMap<BackendEntry>(undefined, expectedBackends);
    this.backends = new BackendValues(this.backendEntries);
  }

  /**
   * The node's whole plan from a state (a start, an adoption, a change of the nodes). slices:
   * the state's EndpointSlices by Service (endpointSlicesByService), when the caller has them.
   */
  static fromState(
    state: ClusterState,
    nodeName: string,
    slices: ReadonlyMap<ObjectKey, readonly EndpointSlice[]> = endpointSlicesByService(
      state.endpointSlices.values(),
    ),
  ): DesiredState {
    const nodeAddresses = new Map([...state.nodes.values()].map((n) => [n.name, n.ip]));
    const ip = nodeAddresses.get(nodeName) ?? '';
    const desired = new DesiredState(
      { name: nodeName, ip },
      nodeAddresses,
      mostBackends(state.endpointSlices),
    );
    // Sorted with their values: no lookup of each key again in a map of every Service. The
    // comparator indexes the pairs: destructuring them walks an iterator, 140k calls at 10k.
    const services = [...state.services].sort((a, b) => compare(a[0], b[0]));
    for (let i = 0; i < services.length; i++) {
      const [key, svc] = services[i] as [ObjectKey, Service];
      // A whole plan is diffed whole: what each Service affected is not worth collecting.
      desired.putService(key, serviceViews(svc, slices.get(key) ?? [], nodeName), IGNORED);
    }
    return desired;
  }

  /** Frontends two service ports claim; the first (by service port id) keeps it. */
  get conflicts(): { frontend: FrontendKey; kept: string; dropped: string }[] {
    const out: { frontend: FrontendKey; kept: string; dropped: string }[] = [];
    for (const id of [...this.conflicted].sort(compare)) out.push(...this.conflictsOf(id));
    return out;
  }

  conflictsOf(id: FrontendKey): { frontend: FrontendKey; kept: string; dropped: string }[] {
    const [kept, ...dropped] = this.claims.get(id) ?? [];
    if (!kept) return [];
    return dropped.map((d) => ({ frontend: id, kept: kept.servicePort, dropped: d.servicePort }));
  }

  serviceCount(): number {
    return this.services.size;
  }

  /**
   * Replaces one Service's ports (views of that Service; none: it is gone or not proxied) and
   * returns the keys whose desired entries may have changed.
   */
  setService(key: ObjectKey, views: readonly ServicePortView[]): AffectedKeys {
    const affected = noneAffected();
    this.putService(key, views, affected);
    return affected;
  }

  private putService(
    key: ObjectKey,
    views: readonly ServicePortView[],
    affected: AffectedKeys,
  ): void {
    const old = this.services.get(key);
    const next = views.length === 0 ? undefined : planService(views, this.node, this.nodeAddresses);
    if (old) {
      for (const fe of old.claims) this.unclaim(fe, affected);
      for (const { group } of old.groups) {
        this.groupData.delete(group.key);
        affected.groups.add(group.key);
      }
      this.services.delete(key);
    }
    if (next) {
      this.services.set(key, next);
      for (const data of next.groups) {
        this.groupData.set(data.group.key, data);
        affected.groups.add(data.group.key);
      }
      for (const fe of next.claims) this.claim(fe, affected);
    }
  }

  private claim(fe: PlannedFrontend, affected: AffectedKeys): void {
    affected.frontends.add(fe.id);
    const list = this.claims.get(fe.id);
    if (!list) {
      this.claims.set(fe.id, [fe]);
      this.win(fe, affected);
      return;
    }
    let at = list.length;
    while (at > 0 && compare((list[at - 1] as PlannedFrontend).servicePort, fe.servicePort) > 0)
      at--;
    list.splice(at, 0, fe);
    this.conflicted.add(fe.id);
    if (at === 0) {
      this.lose(list[1] as PlannedFrontend, affected);
      this.win(fe, affected);
    }
  }

  private unclaim(fe: PlannedFrontend, affected: AffectedKeys): void {
    affected.frontends.add(fe.id);
    const list = this.claims.get(fe.id);
    const at = list?.indexOf(fe) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length <= 1) this.conflicted.delete(fe.id);
    if (list.length === 0) this.claims.delete(fe.id);
    if (at === 0) {
      this.lose(fe, affected);
      const next = list[0];
      if (next) this.win(next, affected);
    }
  }

  private win(fe: PlannedFrontend, affected: AffectedKeys): void {
    this.frontends.set(fe.id, fe);
    const refs = this.groupRefs.get(fe.group) ?? 0;
    this.groupRefs.set(fe.group, refs + 1);
    affected.groups.add(fe.group);
    if (refs > 0) return;
    const data = this.groupData.get(fe.group);
    if (!data) return;
    this.groups.set(fe.group, data.group);
    const keys = data.group.backends;
    for (let i = 0; i < keys.length; i++) {
      const b = keys[i] as BackendKey;
      const value = data.values[i] as BackendValue;
      affected.backends.add(b);
      // A new backend is added with this group as its owner; one listed already gains it.
      const entry = this.backendEntries.setIfAbsent(b, { value, owners: fe.group });
      if (entry === undefined) continue;
      if (typeof entry.owners === 'string') entry.owners = [entry.owners, fe.group];
      else entry.owners.push(fe.group);
    }
  }

  private lose(fe: PlannedFrontend, affected: AffectedKeys): void {
    this.frontends.delete(fe.id);
    const refs = (this.groupRefs.get(fe.group) ?? 1) - 1;
    affected.groups.add(fe.group);
    if (refs > 0) {
      this.groupRefs.set(fe.group, refs);
      return;
    }
    this.groupRefs.delete(fe.group);
    this.groups.delete(fe.group);
    const data = this.groupData.get(fe.group);
    if (!data) return;
    for (const b of data.group.backends) {
      affected.backends.add(b);
      const entry = this.backendEntries.get(b);
      if (entry === undefined) continue;
      const owners = typeof entry.owners === 'string' ? [entry.owners] : entry.owners;
      const at = owners.indexOf(fe.group);
      if (at < 0) continue;
      owners.splice(at, 1);
      entry.owners = owners;
      const first = owners[0];
      const value = first === undefined ? undefined : valueIn(this.groupData.get(first), b);
      if (value === undefined) {
        this.backendEntries.delete(b);
      } else if (at === 0) {
        entry.value = value;
      }
    }
  }
}

function planServicePort(
  plan: ServicePlan,
  view: ServicePortView,
  node: NodeInfo,
  nodeAddresses: ReadonlyMap<string, string>,
): void {
  const proto = PROTO_NUMBERS[view.protocol];
  if (proto === undefined) return; // SCTP: the model never lets it through; nothing to program
  const categorized = categorizeEndpoints(view);
  const affinity = view.sessionAffinity?.timeoutSeconds ?? 0;
  const baseFlags = affinity > 0 ? LbServiceFlag.AFFINITY : 0;

  const group = (local: boolean): GroupKey => {
    const key = `${view.id}/${view.protocol}#${local ? 'local' : 'cluster'}`;
    if (!plan.groups.some((data) => data.group.key === key)) {
      const endpoints = (local ? categorized.localEndpoints : categorized.clusterEndpoints) ?? [];
      plan.groups.push(groupData(key, endpoints, proto, nodeAddresses));
    }
    return key;
  };
  // Local policy with no local endpoint drops (kube-proxy: "has no local endpoints" -> DROP);
  // a service with no usable endpoint anywhere is rejected whatever its policy (REJECT).
  const localOnly = (local: boolean): number =>
    local && categorized.hasAnyEndpoints ? LbServiceFlag.LOCAL_ONLY : 0;

  const add = (address: string, dport: number, scope: number, typeFlag: number): void => {
    const local =
      scope === LbScope.INTERNAL ? internalPolicyLocal(view) : externalPolicyLocal(view);
    const key: Lb4KeyValue = { address, dport, proto, scope };
    const id = frontendKey(key);
    plan.claims.push({
      id,
      key,
      servicePort: view.id,
      group: group(local),
      flags: baseFlags | typeFlag | localOnly(local),
      affinityTimeout: affinity,
    });
  };

  add(view.clusterIP, view.port, LbScope.INTERNAL, LbServiceFlag.CLUSTER_IP);
  if (view.nodePort !== undefined && node.ip !== '') {
    add(node.ip, view.nodePort, LbScope.EXTERNAL, LbServiceFlag.NODEPORT);
  }
  for (const ip of view.loadBalancerIPs) {
    add(ip, view.port, LbScope.EXTERNAL, LbServiceFlag.LOADBALANCER);
  }
  for (const ip of view.externalIPs)
    add(ip, view.port, LbScope.EXTERNAL, LbServiceFlag.EXTERNAL_IP);
}

/**
 * A group's backends: in the order of their names, each key once, with the value of its first
 * endpoint. The endpoints mostly come in that order already (sorted by "ip:port", one per
 * "ip:port", which orders the names of one protocol alike when every key is a number, i.e. every
 * address an IPv4 one), and a check of each neighbour costs less than a map per group; otherwise
 * a map sorts them out.
 */
function groupData(
  key: GroupKey,
  endpoints: readonly EndpointView[],
  proto: number,
  nodeAddresses: ReadonlyMap<string, string>,
): GroupData {
  const keys: BackendKey[] = new Array<BackendKey>(endpoints.length);
  const values: BackendValue[] = new Array<BackendValue>(endpoints.length);
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i] as EndpointView;
    const b = backendKey(ep.ip, ep.port, proto);
    if (
      typeof b !== 'number' ||
      (i > 0 && compareIpPort(endpoints[i - 1] as EndpointView, ep) >= 0)
    ) {
      return unorderedGroupData(key, endpoints, proto, nodeAddresses);
    }
    keys[i] = b;
    values[i] = backendValue(ep, proto, nodeAddresses);
  }
  return { group: { key, backends: keys }, values };
}

function unorderedGroupData(
  key: GroupKey,
  endpoints: readonly EndpointView[],
  proto: number,
  nodeAddresses: ReadonlyMap<string, string>,
): GroupData {
  const byKey = new Map<BackendKey, BackendValue>();
  for (const ep of endpoints) {
    const b = backendKey(ep.ip, ep.port, proto);
    if (!byKey.has(b)) byKey.set(b, backendValue(ep, proto, nodeAddresses));
  }
  const keys = [...byKey.keys()].sort(compareBackendKeys);
  return { group: { key, backends: keys }, values: keys.map((b) => byKey.get(b) as BackendValue) };
}

/**
 * The value of backend b in a group. A scan of its keys (numbers, mostly): a binary search in
 * name order would format names, which costs more for the groups there are.
 */
function valueIn(data: GroupData | undefined, b: BackendKey): BackendValue | undefined {
  if (data === undefined) return undefined;
  const at = data.group.backends.indexOf(b);
  return at < 0 ? undefined : data.values[at];
}

function backendValue(
  ep: EndpointView,
  proto: number,
  nodeAddresses: ReadonlyMap<string, string>,
): BackendValue {
  const nodeAddress = ep.nodeName === undefined ? undefined : nodeAddresses.get(ep.nodeName);
  let valid = nodeAddress === undefined ? false : validAddresses.get(nodeAddress);
  if (valid === undefined) {
    valid = parseIPv4(nodeAddress as string) !== undefined;
    if (validAddresses.size >= MAX_VALID_ADDRESSES) validAddresses.clear();
    validAddresses.set(nodeAddress as string, valid);
  }
  return {
    address: ep.ip,
    port: ep.port,
    proto,
    flags:
      (ep.isLocal ? LbBackendFlag.LOCAL : 0) |
      (!ep.ready && ep.serving && ep.terminating ? LbBackendFlag.TERMINATING : 0),
    node_address: valid ? (nodeAddress as string) : '0.0.0.0',
  };
}

/**
 * At most how many backends a plan of these slices holds (each endpoint of each IPv4 slice port
 * one): the plan's table is made that large at once, not grown and re-filled seven times.
 */
function mostBackends(slices: ReadonlyMap<ObjectKey, EndpointSlice>): number {
  let n = 0;
  slices.forEach((slice) => {
    if (slice.addressType === 'IPv4' && slice.serviceName !== '') {
      n += slice.endpoints.length * slice.ports.length;
    }
  });
  return n;
}

/** Node addresses seen and whether they parse: a handful of nodes, a million endpoints. */
const validAddresses = new Map<string, boolean>();
const MAX_VALID_ADDRESSES = 65536; // node churn never grows it without bound

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
