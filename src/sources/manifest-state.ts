/**
 * The manifests source's rules, pure: which kinds are read, how documents become the agent's
 * ClusterState (nothing allocated: objects as the API server completed them) and what is skipped.
 * The manifests source (manifests.ts, manifest-index.ts) and the Kubernetes source (one object at
 * a time) both read objects through here.
 */
import { createHash } from 'node:crypto';
import type { Addressing, ClusterState, ManifestDoc, ManifestProblem } from '../model/index.js';
import {
  ENDPOINTSLICE_CONTROLLER,
  MANAGED_BY_LABEL,
  emptyState,
  objectKey,
  parseIPv4,
} from '../model/index.js';
import type { ValidDoc, ValidationContext } from '../model/validate.js';
import { checkManifests } from '../model/validate.js';
import type { SkippedObject } from './source.js';

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

/**
 * The model's validation checks addresses against the lab's address plan. The agent serves any
 * cluster, so every range is "anywhere" (only the family is checked: IPv4), except the NodePort
 * range and the pods' range (the cluster CIDR), which are configuration.
 */
export function agentAddressing(nodePortRange: NodePortRange, clusterCIDR?: string): Addressing {
  return {
    fabricCIDR: '0.0.0.0/0',
    podCIDRBase: clusterCIDR ?? '0.0.0.0/0',
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

/** The documents of the kinds the sources read (WATCHED_KINDS), in order. */
export function watchedDocs(docs: readonly ManifestDoc[]): ManifestDoc[] {
  return docs.filter((d) => (WATCHED_KINDS as readonly unknown[]).includes(asObj(d.object)?.kind));
}

export interface StateOptions {
  nodePortRange?: NodePortRange;
  /** The pods' range (perPacketLB.clusterCIDR): a Service with a frontend inside it is skipped. */
  clusterCIDR?: string;
  /** The kernel's congestion control algorithms: a TrafficOptimization asking for another is skipped. */
  congestionControls?: readonly string[];
}

/** What the model's validation is given: any address plan, this NodePort range. */
export function validationContext(options: StateOptions): ValidationContext {
  return {
    addressing: agentAddressing(
      options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE,
      options.clusterCIDR,
    ),
    ...(options.congestionControls ? { congestionControls: options.congestionControls } : {}),
  };
}

/**
 * The ClusterState the given documents describe, and the objects left out. Pure: the unit of
 * the source that tests drive directly.
 */
export function clusterStateFromDocs(
  docs: readonly ManifestDoc[],
  options: StateOptions = {},
): { state: ClusterState; skipped: SkippedObject[] } {
  const { valid, problems } = checkManifests(watchedDocs(docs), validationContext(options));
  return clusterStateFromChecked(valid, problems);
}

/**
 * The state from documents already checked (each one, and across them): `valid` in read
 * order, `problems` every problem found; a valid document with a problem is skipped all the same.
 */
export function clusterStateFromChecked(
  valid: readonly ValidDoc[],
  problems: readonly ManifestProblem[],
): { state: ClusterState; skipped: SkippedObject[] } {
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

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
