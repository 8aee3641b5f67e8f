/**
 * The cluster state as a value, and what the Kubernetes control plane does to it: every
 * operation returns a new ClusterState and leaves its input untouched (objects inside are
 * shared, never mutated), so a failed apply leaves the caller's state as it was.
 *
 * applyObjects validates every document first (validate.ts) and throws ManifestError listing
 * all problems; then, like the API server and controllers:
 *
 * - Namespaces: created implicitly for any namespaced object; 'default' always exists.
 * - Nodes: from Node manifests (ip and podCIDR allocated when not given: the lowest free fabric
 *   address from .10, the lowest free /24 of podCIDRBase). When the cluster would otherwise
 *   have no node at all, the `nodes` option adds them (a count: node-0..node-(N-1), see
 *   defaultNodes). A node's addresses never change.
 * - Services: ClusterIP from serviceCIDR, lowest free, skipping the network address, .1
 *   (reserved, as Kubernetes reserves it for kubernetes.default) and the broadcast address;
 *   spec.clusterIP honoured; 'None' is headless. NodePorts for NodePort/LoadBalancer ports
 *   without one: lowest free in the range. LoadBalancer: an ingress address from
 *   loadBalancerPool (lowest free, or spec.loadBalancerIP). An updated service keeps its
 *   ClusterIP, NodePorts (ports matched by port+protocol) and LB address (allocation.ts).
 *   Addresses named by manifests are reserved before any is allocated, so order never makes
 *   an explicit request fail.
 * - Pods: scheduled to spec.nodeName, else to the node with the fewest pods (ties: lowest
 *   name) that has a free address; IPs from the node's pod CIDR starting at .2, lowest free,
 *   stable for the pod's life. An IP freed in a change is not handed out again in the same
 *   change (so a consumer never sees one IP on two pods across a transition). A re-applied pod
 *   keeps node, IP and conditions (readiness follows a change of the sluice.io/ready
 *   annotation).
 * - Deployments: `replicas` pods named <deployment>-<template hash>-<replica suffix>, both
 *   five characters derived from the deployment (name and template) and the replica index,
 *   labelled pod-template-hash like ReplicaSet pods. Scaling adds or removes the highest
 *   indices; a changed template replaces the pods; a deleted pod is recreated. Terminating
 *   pods still count as replicas (no surge). Bare pods matching a deployment's selector are
 *   not adopted.
 * - EndpointSlices: user slices stored; managed slices recomputed (endpointslices.ts) after
 *   every operation.
 * - NetworkPolicy / CiliumNetworkPolicy: stored.
 */
import { DEFAULT_ADDRESSING } from './addressing.js';
import type { Addressing } from './addressing.js';
import {
  allocatesNodePorts,
  isAllocatedIP,
  keptClusterIP,
  keptLoadBalancerIP,
  keptNodePort,
  needsClusterIP,
} from './allocation.js';
import { reconcileEndpointSlices } from './endpointslices.js';
import type { EndpointSliceOptions } from './endpointslices.js';
import { ManifestError, ModelError } from './errors.js';
import type { ManifestProblem } from './errors.js';
import { derivedUid, replicaSuffix, shortHash } from './hash.js';
import {
  broadcastOf,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  mustParseCidr,
  nthSubnet,
  parseIPv4,
} from './ip.js';
import type { Cidr } from './ip.js';
import type { ManifestDoc } from './manifests.js';
import { ANNOTATIONS, readyFromAnnotations, virtualFromAnnotations } from './normalize.js';
import type { NodeInput, PodInput } from './normalize.js';
import { CLUSTER_SCOPED_KINDS, isSupportedKind, validateManifests } from './validate.js';
import type { SupportedKind, ValidDoc } from './validate.js';
import { objectKey } from './types.js';
import type {
  ClusterState,
  Deployment,
  Namespace,
  Node,
  ObjectKey,
  Pod,
  PodConditions,
  Service,
} from './types.js';

export interface ApplyOptions extends EndpointSliceOptions {
  addressing?: Addressing;
  /**
   * Nodes for a cluster that would otherwise have none (no Node in the state or the
   * manifests): a count (defaultNodes) or the nodes themselves. Ignored otherwise, so the lab
   * can pass it on every apply.
   */
  nodes?: number | readonly Node[];
  /** The kernel's congestion control algorithms, checked in TrafficOptimizations (validate.ts). */
  congestionControls?: readonly string[];
}

/** A manifest document, or a bare object (its source becomes `<inline>#i`). */
export type ApplyInput = ManifestDoc | Readonly<Record<string, unknown>>;

/** What deleteObjects takes: namespace defaults to 'default' for namespaced kinds. */
export interface ObjectRef {
  kind: SupportedKind;
  namespace?: string;
  name: string;
}

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

export function emptyState(): ClusterState {
  return {
    namespaces: new Map([
      ['default', { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } }],
    ]),
    nodes: new Map(),
    deployments: new Map(),
    pods: new Map(),
    services: new Map(),
    endpointSlices: new Map(),
    policies: new Map(),
  };
}

/**
 * The lab's default nodes: node-i with address fabric .(10+i) and the i-th /24 of
 * podCIDRBase as its pod CIDR.
 */
export function defaultNodes(count: number, addressing: Addressing = DEFAULT_ADDRESSING): Node[] {
  const fabric = mustParseCidr(addressing.fabricCIDR);
  const podBase = mustParseCidr(addressing.podCIDRBase);
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const ip = fabric.network + 10 + i;
    const podCIDR = nthSubnet(podBase, Math.max(24, podBase.prefix), i);
    if (ip >= broadcastOf(fabric) || !podCIDR) {
      throw new ModelError(
        'BAD_OPTIONS',
        `${count} nodes do not fit the address plan (fabric ${addressing.fabricCIDR}, pod range ${addressing.podCIDRBase})`,
      );
    }
    const name = `node-${i}`;
    nodes.push({
      name,
      labels: { [HOSTNAME_LABEL]: name },
      ip: formatIPv4(ip),
      podCIDR: formatCidr(podCIDR),
    });
  }
  return nodes;
}

export function isManifestDoc(input: unknown): input is ManifestDoc {
  if (typeof input !== 'object' || input === null) return false;
  const o = input as Record<string, unknown>;
  const source = o.source as Record<string, unknown> | undefined;
  return (
    'object' in o &&
    typeof source === 'object' &&
    source !== null &&
    typeof source.file === 'string' &&
    typeof source.index === 'number'
  );
}

export function toManifestDocs(objects: readonly ApplyInput[], file = '<inline>'): ManifestDoc[] {
  return objects.map((o, index) => (isManifestDoc(o) ? o : { source: { file, index }, object: o }));
}

/** The references of the given documents, for deleteObjects (e.g. `lab delete -f`). */
export function refsOf(objects: readonly ApplyInput[]): ObjectRef[] {
  const refs: ObjectRef[] = [];
  const problems: ManifestProblem[] = [];
  for (const doc of toManifestDocs(objects)) {
    const o = doc.object as Record<string, unknown> | null;
    const kind = typeof o?.kind === 'string' ? o.kind : '';
    const metadata = o?.metadata as Record<string, unknown> | undefined;
    const name = typeof metadata?.name === 'string' ? metadata.name : '';
    const base = { file: doc.source.file, index: doc.source.index, kind, namespace: '', name };
    if (!isSupportedKind(kind)) {
      problems.push({ ...base, path: 'kind', message: `unsupported kind ${JSON.stringify(kind)}` });
    } else if (name === '') {
      problems.push({ ...base, path: 'metadata.name', message: 'required' });
    } else {
      const namespace = typeof metadata?.namespace === 'string' ? metadata.namespace : undefined;
      refs.push(
        CLUSTER_SCOPED_KINDS.has(kind)
          ? { kind, name }
          : { kind, namespace: namespace ?? 'default', name },
      );
    }
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return refs;
}

// ---------------------------------------------------------------------------------------------

/** Validate and apply the objects; throws ManifestError (state unchanged) on any problem. */
export function applyObjects(
  state: ClusterState,
  objects: readonly ApplyInput[],
  options: ApplyOptions = {},
): ClusterState {
  const addressing = options.addressing ?? DEFAULT_ADDRESSING;
  const docs = toManifestDocs(objects);

  const manifestNodeNames = docs
    .map((d) => d.object as Record<string, unknown> | null)
    .filter((o) => o?.kind === 'Node')
    .map((o) => (o?.metadata as Record<string, unknown> | undefined)?.name)
    .filter((n): n is string => typeof n === 'string');
  const optionNodes =
    state.nodes.size === 0 && manifestNodeNames.length === 0
      ? resolveNodes(options.nodes, addressing)
      : [];
  const nodeNames = [
    ...state.nodes.keys(),
    ...manifestNodeNames,
    ...optionNodes.map((n) => n.name),
  ];

  const valid = validateManifests(docs, {
    addressing,
    state,
    nodeNames,
    ...(options.congestionControls ? { congestionControls: options.congestionControls } : {}),
  });
  const draft = new Draft(state);
  const problems: ManifestProblem[] = [];
  const fail = (doc: ValidDoc | undefined, path: string, message: string): void => {
    problems.push({
      file: doc?.source.file ?? '<state>',
      index: doc?.source.index ?? -1,
      kind: doc?.kind ?? '',
      namespace: doc?.namespace ?? '',
      name: doc?.name ?? '',
      path,
      message,
    });
  };

  // Namespaces, explicit then implicit.
  for (const doc of valid) {
    if (doc.normalized.kind === 'Namespace') draft.namespaces.set(doc.name, doc.normalized.value);
  }
  for (const doc of valid) {
    if (doc.namespace !== '') draft.ensureNamespace(doc.namespace);
  }

  // Nodes.
  applyNodes(draft, valid, addressing, fail);
  if (draft.nodes.size === 0) for (const node of optionNodes) draft.nodes.set(node.name, node);

  // Services, user EndpointSlices, policies, deployments.
  applyServices(draft, valid, state, addressing, fail);
  for (const doc of valid) {
    const n = doc.normalized;
    const key = objectKey(doc.namespace, doc.name);
    if (n.kind === 'EndpointSlice') draft.endpointSlices.set(key, n.value);
    else if (
      n.kind === 'NetworkPolicy' ||
      n.kind === 'CiliumNetworkPolicy' ||
      n.kind === 'TrafficOptimization'
    )
      draft.policies.set(key, n.value);
    else if (n.kind === 'Deployment') draft.deployments.set(key, n.value);
  }

  // Bare pods: updates in place, new ones scheduled in document order.
  for (const doc of valid) {
    if (doc.normalized.kind !== 'Pod') continue;
    const input = doc.normalized.value;
    const key = objectKey(input.namespace, input.name);
    const existing = draft.pods.get(key);
    if (existing) {
      draft.pods.set(key, updatePod(existing, input));
      continue;
    }
    const placed = draft.place(input.nodeName);
    if (!placed) {
      fail(doc, input.nodeName ? 'spec.nodeName' : '', noRoomMessage(draft, input.nodeName));
      continue;
    }
    draft.addPod(newPod(input, placed.node, placed.ip));
  }

  for (const unplaced of runDeploymentController(draft)) {
    const doc = valid.find(
      (d) =>
        d.kind === 'Deployment' && d.namespace === unplaced.namespace && d.name === unplaced.name,
    );
    fail(
      doc,
      doc ? 'spec.replicas' : '',
      `${unplaced.missing} replica(s) cannot be placed: ${noRoomMessage(draft, unplaced.nodeName)}`,
    );
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return draft.finish(options);
}

/** Delete the referenced objects (missing ones are ignored) and let the controllers follow. */
export function deleteObjects(
  state: ClusterState,
  refs: readonly ObjectRef[],
  options: EndpointSliceOptions = {},
): ClusterState {
  const draft = new Draft(state);
  for (const ref of refs) {
    const namespace = CLUSTER_SCOPED_KINDS.has(ref.kind) ? '' : (ref.namespace ?? 'default');
    const key = objectKey(namespace, ref.name);
    switch (ref.kind) {
      case 'Namespace':
        if (ref.name === 'default') {
          throw new ModelError('FORBIDDEN', 'namespace "default" may not be deleted');
        }
        draft.namespaces.delete(ref.name);
        for (const map of [
          draft.deployments,
          draft.pods,
          draft.services,
          draft.endpointSlices,
          draft.policies,
        ]) {
          for (const [k, v] of map) if (v.namespace === ref.name) map.delete(k);
        }
        break;
      case 'Node':
        draft.nodes.delete(ref.name);
        for (const [k, pod] of draft.pods) if (pod.nodeName === ref.name) draft.pods.delete(k);
        break;
      case 'Pod':
        draft.pods.delete(key);
        break;
      case 'Deployment':
        draft.deployments.delete(key);
        break;
      case 'Service':
        draft.services.delete(key);
        break;
      case 'EndpointSlice':
        draft.endpointSlices.delete(key);
        break;
      case 'NetworkPolicy':
      case 'CiliumNetworkPolicy':
      case 'TrafficOptimization':
        if (draft.policies.get(key)?.kind === ref.kind) draft.policies.delete(key);
        break;
    }
  }
  // Replacement pods for deleted ones; those that fit nowhere stay pending (not created).
  runDeploymentController(draft);
  return draft.finish(options);
}

/** Flip a pod's readiness or start its graceful termination. */
export function setPodConditions(
  state: ClusterState,
  podKey: ObjectKey,
  conditions: Partial<PodConditions>,
  options: EndpointSliceOptions = {},
): ClusterState {
  const pod = state.pods.get(podKey);
  if (!pod) throw new ModelError('OBJECT_NOT_FOUND', `pod ${podKey} not found`);
  const draft = new Draft(state);
  draft.pods.set(podKey, { ...pod, conditions: { ...pod.conditions, ...conditions } });
  return draft.finish(options);
}

// ---------------------------------------------------------------------------------------------

function resolveNodes(nodes: ApplyOptions['nodes'], addressing: Addressing): Node[] {
  if (nodes === undefined) return [];
  return typeof nodes === 'number' ? defaultNodes(nodes, addressing) : [...nodes];
}

type Fail = (doc: ValidDoc | undefined, path: string, message: string) => void;

/** A mutable copy of the state for one operation. */
class Draft {
  readonly namespaces: Map<string, Namespace>;
  readonly nodes: Map<string, Node>;
  readonly deployments: Map<ObjectKey, Deployment>;
  readonly pods: Map<ObjectKey, Pod>;
  readonly services: Map<ObjectKey, Service>;
  readonly endpointSlices: ClusterState['endpointSlices'];
  readonly policies: ClusterState['policies'];
  /** Pod IPs in use at the start or handed out during this operation, per node. */
  private readonly reservedIPs = new Map<string, Set<number>>();
  private readonly cursors = new Map<string, number>();
  private podCounts: Map<string, number> | undefined;

  constructor(state: ClusterState) {
    this.namespaces = new Map(state.namespaces);
    this.nodes = new Map(state.nodes);
    this.deployments = new Map(state.deployments);
    this.pods = new Map(state.pods);
    this.services = new Map(state.services);
    this.endpointSlices = new Map(state.endpointSlices);
    this.policies = new Map(state.policies);
    for (const pod of state.pods.values()) {
      const ip = parseIPv4(pod.ip);
      if (ip !== undefined) this.reserved(pod.nodeName).add(ip);
    }
  }

  ensureNamespace(name: string): void {
    if (!this.namespaces.has(name)) {
      this.namespaces.set(name, { name, labels: { 'kubernetes.io/metadata.name': name } });
    }
  }

  private reserved(node: string): Set<number> {
    let set = this.reservedIPs.get(node);
    if (!set) {
      set = new Set();
      this.reservedIPs.set(node, set);
    }
    return set;
  }

  private counts(): Map<string, number> {
    if (!this.podCounts) {
      this.podCounts = new Map([...this.nodes.keys()].map((n) => [n, 0]));
      for (const pod of this.pods.values()) {
        this.podCounts.set(pod.nodeName, (this.podCounts.get(pod.nodeName) ?? 0) + 1);
      }
    }
    return this.podCounts;
  }

  /** The lowest free pod IP of the node (not reserved in this operation), or undefined. */
  private freeIP(nodeName: string): number | undefined {
    const node = this.nodes.get(nodeName);
    if (!node) return undefined;
    const cidr = mustParseCidr(node.podCIDR);
    const reserved = this.reserved(nodeName);
    let ip = Math.max(this.cursors.get(nodeName) ?? 0, cidr.network + 2);
    const last = broadcastOf(cidr) - 1;
    while (ip <= last && reserved.has(ip)) ip++;
    this.cursors.set(nodeName, ip);
    return ip <= last ? ip : undefined;
  }

  /** Choose a node (the given one, or the least loaded) and an IP on it. */
  place(nodeName: string | undefined): { node: string; ip: string } | undefined {
    if (nodeName !== undefined) {
      const ip = this.freeIP(nodeName);
      return ip === undefined ? undefined : { node: nodeName, ip: formatIPv4(ip) };
    }
    const counts = this.counts();
    const candidates = [...this.nodes.keys()].sort((a, b) => {
      const d = (counts.get(a) ?? 0) - (counts.get(b) ?? 0);
      return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
    });
    for (const node of candidates) {
      const ip = this.freeIP(node);
      if (ip !== undefined) return { node, ip: formatIPv4(ip) };
    }
    return undefined;
  }

  addPod(pod: Pod): void {
    const ip = parseIPv4(pod.ip);
    if (ip !== undefined) this.reserved(pod.nodeName).add(ip);
    const counts = this.counts();
    counts.set(pod.nodeName, (counts.get(pod.nodeName) ?? 0) + 1);
    this.pods.set(objectKey(pod.namespace, pod.name), pod);
  }

  removePod(key: ObjectKey): void {
    const pod = this.pods.get(key);
    if (!pod) return;
    this.pods.delete(key);
    const counts = this.counts();
    counts.set(pod.nodeName, Math.max(0, (counts.get(pod.nodeName) ?? 0) - 1));
  }

  finish(options: EndpointSliceOptions): ClusterState {
    const endpointSlices = reconcileEndpointSlices(this, options);
    return {
      namespaces: sortedMap(this.namespaces),
      nodes: sortedMap(this.nodes),
      deployments: sortedMap(this.deployments),
      pods: sortedMap(this.pods),
      services: sortedMap(this.services),
      endpointSlices: sortedMap(endpointSlices),
      policies: sortedMap(this.policies),
    };
  }
}

function sortedMap<V>(map: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function noRoomMessage(draft: Draft, nodeName: string | undefined): string {
  if (nodeName !== undefined) return `node ${nodeName} has no free address in its pod CIDR`;
  return draft.nodes.size === 0 ? 'the cluster has no nodes' : 'no node has a free pod address';
}

function newPod(input: PodInput, nodeName: string, ip: string): Pod {
  return {
    ...input,
    uid: derivedUid('Pod', input.namespace, input.name, nodeName, ip),
    nodeName,
    ip,
  };
}

/** A re-applied pod: node, IP and uid stay; conditions stay unless the manifest changed them. */
function updatePod(existing: Pod, input: PodInput): Pod {
  const readyChanged =
    existing.annotations[ANNOTATIONS.ready] !== input.annotations[ANNOTATIONS.ready];
  const rest: Pod = { ...existing };
  delete rest.owner; // A bare pod's manifest makes the pod its own (no longer a replica).
  return {
    ...rest,
    labels: input.labels,
    annotations: input.annotations,
    containers: input.containers,
    virtual: input.virtual,
    conditions: {
      ready: readyChanged ? input.conditions.ready : existing.conditions.ready,
      terminating: existing.conditions.terminating || input.conditions.terminating,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Nodes

function applyNodes(
  draft: Draft,
  valid: readonly ValidDoc[],
  addressing: Addressing,
  fail: Fail,
): void {
  const fabric = mustParseCidr(addressing.fabricCIDR);
  const podBase = mustParseCidr(addressing.podCIDRBase);
  const inputs: { doc: ValidDoc; node: NodeInput }[] = [];
  for (const doc of valid)
    if (doc.normalized.kind === 'Node') inputs.push({ doc, node: doc.normalized.value });

  // Existing nodes keep their addresses; named addresses are taken before any is allocated.
  const pending: { doc: ValidDoc; node: NodeInput }[] = [];
  for (const { doc, node } of inputs) {
    const existing = draft.nodes.get(node.name);
    const ip = existing?.ip ?? node.ip;
    const podCIDR = existing?.podCIDR ?? node.podCIDR;
    if (ip !== undefined && podCIDR !== undefined)
      draft.nodes.set(node.name, { name: node.name, labels: node.labels, ip, podCIDR });
    else pending.push({ doc, node });
  }
  for (const { doc, node } of pending) {
    const usedIPs = new Set([...draft.nodes.values()].map((n) => parseIPv4(n.ip)));
    const usedCIDRs: Cidr[] = [...draft.nodes.values()].map((n) => mustParseCidr(n.podCIDR));
    for (const p of pending) {
      if (p.node.ip !== undefined) usedIPs.add(parseIPv4(p.node.ip));
      if (p.node.podCIDR !== undefined) usedCIDRs.push(mustParseCidr(p.node.podCIDR));
    }
    let ip = node.ip;
    if (ip === undefined) {
      for (let a = fabric.network + 10; a < broadcastOf(fabric); a++) {
        if (!usedIPs.has(a)) {
          ip = formatIPv4(a);
          break;
        }
      }
    }
    let podCIDR = node.podCIDR;
    if (podCIDR === undefined) {
      const prefix = Math.max(24, podBase.prefix);
      for (let i = 0; ; i++) {
        const subnet = nthSubnet(podBase, prefix, i);
        if (!subnet) break;
        if (!usedCIDRs.some((c) => cidrsOverlap(c, subnet))) {
          podCIDR = formatCidr(subnet);
          break;
        }
      }
    }
    if (ip === undefined)
      fail(doc, 'status.addresses', `no free address on the fabric ${addressing.fabricCIDR}`);
    else if (podCIDR === undefined)
      fail(doc, 'spec.podCIDR', `no free /24 left in the pod range ${addressing.podCIDRBase}`);
    else draft.nodes.set(node.name, { name: node.name, labels: node.labels, ip, podCIDR });
  }
}

// ---------------------------------------------------------------------------------------------
// Services

function applyServices(
  draft: Draft,
  valid: readonly ValidDoc[],
  state: ClusterState,
  addressing: Addressing,
  fail: Fail,
): void {
  const docs: { doc: ValidDoc; svc: Service }[] = [];
  for (const doc of valid) {
    if (doc.normalized.kind === 'Service') docs.push({ doc, svc: doc.normalized.value });
  }
  // Pass 1: each service with what it names or keeps.
  const pending: { doc: ValidDoc; svc: Service }[] = [];
  for (const { doc, svc } of docs) {
    const key = objectKey(svc.namespace, svc.name);
    const existing = state.services.get(key);
    const next: Service = { ...svc, ports: svc.ports.map((p) => ({ ...p })) };
    const ip = keptClusterIP(existing, next);
    if (ip !== undefined) next.clusterIP = ip;
    for (const p of next.ports) {
      const np = keptNodePort(existing, next, p);
      if (np !== undefined) p.nodePort = np;
    }
    const lb = keptLoadBalancerIP(existing, next);
    if (lb !== undefined) next.loadBalancerIP = lb;
    draft.services.set(key, next);
    pending.push({ doc, svc: next });
  }

  // Pass 2: allocate what is still missing, lowest free first.
  const serviceCIDR = mustParseCidr(addressing.serviceCIDR);
  const pool = mustParseCidr(addressing.loadBalancerPool);
  const usedIPs = new Set<number>();
  const usedNodePorts = new Set<number>();
  const usedLB = new Set<number>();
  for (const svc of draft.services.values()) {
    if (isAllocatedIP(svc.clusterIP)) usedIPs.add(parseIPv4(svc.clusterIP) ?? -1);
    for (const p of svc.ports) if (p.nodePort !== undefined) usedNodePorts.add(p.nodePort);
    if (svc.loadBalancerIP !== undefined) usedLB.add(parseIPv4(svc.loadBalancerIP) ?? -1);
  }
  const ipCursor = lowestFree(usedIPs, serviceCIDR.network + 2, broadcastOf(serviceCIDR) - 1);
  const nodePortCursor = lowestFree(
    usedNodePorts,
    addressing.nodePortRange.min,
    addressing.nodePortRange.max,
  );
  const lbCursor = lowestFree(usedLB, pool.network + 1, broadcastOf(pool) - 1);

  for (const { doc, svc } of pending) {
    const key = objectKey(svc.namespace, svc.name);
    let next = svc;
    if (needsClusterIP(next) && next.clusterIP === '') {
      const ip = ipCursor();
      if (ip === undefined)
        fail(
          doc,
          'spec.clusterIP',
          `no free address left in the service CIDR ${addressing.serviceCIDR}`,
        );
      else next = { ...next, clusterIP: formatIPv4(ip) };
    }
    if (allocatesNodePorts(next) && next.ports.some((p) => p.nodePort === undefined)) {
      const ports = next.ports.map((p, i) => {
        if (p.nodePort !== undefined) return p;
        const np = nodePortCursor();
        if (np === undefined) {
          fail(
            doc,
            `spec.ports[${i}].nodePort`,
            `no free port left in the node port range ${addressing.nodePortRange.min}-${addressing.nodePortRange.max}`,
          );
          return p;
        }
        return { ...p, nodePort: np };
      });
      next = { ...next, ports };
    }
    if (next.type === 'LoadBalancer' && next.loadBalancerIP === undefined) {
      const ip = lbCursor();
      if (ip === undefined)
        fail(
          doc,
          'spec.loadBalancerIP',
          `no free address left in the load-balancer pool ${addressing.loadBalancerPool}`,
        );
      else next = { ...next, loadBalancerIP: formatIPv4(ip) };
    }
    draft.services.set(key, next);
  }
}

/** A generator of the lowest values in [from, to] not in used, ascending. */
function lowestFree(used: ReadonlySet<number>, from: number, to: number): () => number | undefined {
  let next = from;
  return () => {
    while (next <= to && used.has(next)) next++;
    if (next > to) return undefined;
    return next++;
  };
}

// ---------------------------------------------------------------------------------------------
// Deployments

/** The pod-template-hash of a deployment: five characters from its name and template. */
export function templateHash(d: Deployment): string {
  return shortHash('Deployment', d.namespace, d.name, d.template);
}

/** The name of replica `index` of the deployment. */
export function replicaName(d: Deployment, index: number): string {
  const hash = templateHash(d);
  return `${d.name}-${hash}-${replicaSuffix(hash, index)}`;
}

interface Unplaced {
  namespace: string;
  name: string;
  nodeName: string | undefined;
  missing: number;
}

/** The ReplicaSet controller, collapsed: make each deployment's pods match its spec. */
function runDeploymentController(draft: Draft): Unplaced[] {
  const unplaced: Unplaced[] = [];
  // Pods of deployments that no longer exist are garbage-collected.
  for (const [key, pod] of [...draft.pods]) {
    if (pod.owner && !draft.deployments.has(objectKey(pod.namespace, pod.owner.name))) {
      draft.removePod(key);
    }
  }
  const deployments = [...draft.deployments.values()].sort((a, b) => {
    const ka = objectKey(a.namespace, a.name);
    const kb = objectKey(b.namespace, b.name);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const owned = new Map<ObjectKey, Pod[]>();
  for (const pod of draft.pods.values()) {
    if (!pod.owner) continue;
    const key = objectKey(pod.namespace, pod.owner.name);
    const list = owned.get(key);
    if (list) list.push(pod);
    else owned.set(key, [pod]);
  }
  // First remove every surplus pod, so that spreading sees the final counts.
  const desiredByDeployment = new Map<Deployment, string[]>();
  for (const d of deployments) {
    const desired = Array.from({ length: d.replicas }, (_, i) => replicaName(d, i));
    desiredByDeployment.set(d, desired);
    const keep = new Set(desired);
    for (const pod of owned.get(objectKey(d.namespace, d.name)) ?? []) {
      if (!keep.has(pod.name)) draft.removePod(objectKey(pod.namespace, pod.name));
    }
  }
  for (const d of deployments) {
    const hash = templateHash(d);
    let missing = 0;
    for (const name of desiredByDeployment.get(d) ?? []) {
      const key = objectKey(d.namespace, name);
      if (draft.pods.has(key)) continue;
      const placed = draft.place(d.template.nodeName);
      if (!placed) {
        missing++;
        continue;
      }
      const annotations = { ...d.template.annotations };
      draft.addPod(
        newPod(
          {
            namespace: d.namespace,
            name,
            labels: { ...d.template.labels, [POD_TEMPLATE_HASH_LABEL]: hash },
            annotations,
            containers: d.template.containers.map((c) => ({
              ...c,
              ports: c.ports.map((p) => ({ ...p })),
            })),
            conditions: { ready: readyFromAnnotations(annotations), terminating: false },
            owner: { kind: 'Deployment', name: d.name },
            virtual: virtualFromAnnotations(annotations),
          },
          placed.node,
          placed.ip,
        ),
      );
    }
    if (missing > 0) {
      unplaced.push({
        namespace: d.namespace,
        name: d.name,
        nodeName: d.template.nodeName,
        missing,
      });
    }
  }
  return unplaced;
}
