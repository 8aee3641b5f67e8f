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
import type { ClusterState, EndpointView, ServicePortView } from '../model/index.js';
import {
  categorizeEndpoints,
  externalPolicyLocal,
  internalPolicyLocal,
  parseIPv4,
  proxyView,
} from '../model/index.js';

export interface NodeInfo {
  name: string;
  /** The node's address (InternalIP): NodePorts listen on it. '' when unknown (no NodePorts). */
  ip: string;
}

/** `address:port/PROTO`, the identity of a backend (its lb4_backends id follows it). */
export type BackendKey = string;
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
  /** Sorted. */
  backends: BackendKey[];
}

export interface DatapathPlan {
  frontends: Map<FrontendKey, PlannedFrontend>;
  groups: Map<GroupKey, PlannedGroup>;
  backends: Map<BackendKey, BackendValue>;
  /** Frontends two service ports claim; the first (by service port id) keeps it. */
  conflicts: { frontend: FrontendKey; kept: string; dropped: string }[];
}

export const PROTO_NUMBERS: Record<string, number> = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP };
const PROTO_NAMES: Record<number, string> = { [IPPROTO.TCP]: 'TCP', [IPPROTO.UDP]: 'UDP' };
export const protoName = (proto: number): string => PROTO_NAMES[proto] ?? `proto${proto}`;
export const scopeName = (scope: number): string =>
  scope === LbScope.INTERNAL ? 'internal' : 'external';

export const backendKey = (address: string, port: number, proto: number): BackendKey =>
  `${address}:${port}/${protoName(proto)}`;

export const frontendKey = (k: Lb4KeyValue): FrontendKey =>
  `${k.address}:${k.dport}/${protoName(k.proto)}/${scopeName(k.scope)}`;

/** The plan of one node of the cluster: its proxy view, its address, every node's address. */
export function planForNode(state: ClusterState, nodeName: string): DatapathPlan {
  const nodeAddresses = new Map([...state.nodes.values()].map((n) => [n.name, n.ip]));
  const ip = nodeAddresses.get(nodeName) ?? '';
  return planDatapath(proxyView(state, nodeName), { name: nodeName, ip }, nodeAddresses);
}

/** Plans the node's datapath. Views come sorted from proxyView; the result is deterministic. */
export function planDatapath(
  views: readonly ServicePortView[],
  node: NodeInfo,
  nodeAddresses: ReadonlyMap<string, string> = new Map(),
): DatapathPlan {
  const plan: DatapathPlan = {
    frontends: new Map(),
    groups: new Map(),
    backends: new Map(),
    conflicts: [],
  };
  for (const view of views) planServicePort(plan, view, node, nodeAddresses);
  return plan;
}

function planServicePort(
  plan: DatapathPlan,
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
    if (!plan.groups.has(key)) {
      const endpoints = (local ? categorized.localEndpoints : categorized.clusterEndpoints) ?? [];
      const backends = endpoints.map((ep) => addBackend(plan, ep, proto, nodeAddresses));
      plan.groups.set(key, { key, backends: [...new Set(backends)].sort(compare) });
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
    const existing = plan.frontends.get(id);
    if (existing) {
      plan.conflicts.push({ frontend: id, kept: existing.servicePort, dropped: view.id });
      return;
    }
    plan.frontends.set(id, {
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

function addBackend(
  plan: DatapathPlan,
  ep: EndpointView,
  proto: number,
  nodeAddresses: ReadonlyMap<string, string>,
): BackendKey {
  const key = backendKey(ep.ip, ep.port, proto);
  if (plan.backends.has(key)) return key; // the same pod port behind several service ports
  const nodeAddress = ep.nodeName === undefined ? undefined : nodeAddresses.get(ep.nodeName);
  plan.backends.set(key, {
    address: ep.ip,
    port: ep.port,
    proto,
    flags:
      (ep.isLocal ? LbBackendFlag.LOCAL : 0) |
      (!ep.ready && ep.serving && ep.terminating ? LbBackendFlag.TERMINATING : 0),
    node_address:
      nodeAddress !== undefined && parseIPv4(nodeAddress) !== undefined ? nodeAddress : '0.0.0.0',
  });
  return key;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
