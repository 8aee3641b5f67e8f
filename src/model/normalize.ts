/**
 * Validated manifest objects -> the normalized types of types.ts, with the defaults the
 * Kubernetes API server applies (pkg/apis/core/v1/defaults.go) and the lab's annotations:
 *
 * - metadata.namespace: 'default' for namespaced kinds; labels/annotations: {}.
 * - Namespace: label kubernetes.io/metadata.name=<name> (as the API server sets it).
 * - Node: label kubernetes.io/hostname=<name>; ip from status.addresses (InternalIP) and
 *   podCIDR from spec.podCIDR, both optional (the lab allocates them).
 * - Service: type ClusterIP; ports protocol TCP, targetPort = port, name '' (only possible
 *   with a single port); sessionAffinity None, ClientIP timeout 10800 s; external and internal
 *   traffic policies Cluster; publishNotReadyAddresses false; externalIPs []. A missing or
 *   empty selector means no selector (EndpointSlices come from the user). clusterIP '' means
 *   "allocate" (ExternalName services keep ''); nodePort / loadBalancerIP undefined likewise.
 * - Pod / Deployment template: containers' ports protocol TCP; readiness true unless the
 *   annotation `sluice.io/ready: "false"`; `sluice.io/virtual: "true"` makes a virtual pod (an
 *   address, no process); metadata.deletionTimestamp makes it terminating.
 * - Container command: the annotation `sluice.io/command.<container>` for that container, else
 *   `sluice.io/command` for the first container, split by splitCommandLine (command.ts); else
 *   the container's command + args; a container with args but no command keeps them in args.
 * - Deployment: replicas 1; selector: its matchLabels (matchExpressions are validated against
 *   the template but not kept).
 * - EndpointSlice (user-supplied): port name '', protocol TCP; endpoint conditions as kube-proxy
 *   reads them: ready nil = true, serving nil = true, terminating nil = false; targetRef as
 *   namespace/name; managed false.
 * - NetworkPolicy / CiliumNetworkPolicy: spec (and a CNP's specs) stored as given.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IEndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { INode } from 'kubernetes-models/v1/Node';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';

import { splitCommandLine } from './command.js';
import type {
  Container,
  Deployment,
  EndpointSlice,
  Namespace,
  Pod,
  Policy,
  Service,
  ServicePort,
  ServiceType,
} from './types.js';

/** Annotations the lab reads. */
export const ANNOTATIONS = {
  ready: 'sluice.io/ready',
  virtual: 'sluice.io/virtual',
  command: 'sluice.io/command',
  /** Prefix: `sluice.io/command.<container name>`. */
  commandFor: 'sluice.io/command.',
} as const;

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const ENDPOINTSLICE_CONTROLLER = 'endpointslice-controller.k8s.io';
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** A Node as declared: the lab fills in ip and podCIDR when absent. */
export interface NodeInput {
  name: string;
  labels: Record<string, string>;
  ip?: string;
  podCIDR?: string;
}

/** A Pod as declared: scheduling, IPAM and uid come from the state. */
export type PodInput = Omit<Pod, 'uid' | 'ip' | 'nodeName'> & { nodeName?: string };

export type NormalizedObject =
  | { kind: 'Namespace'; value: Namespace }
  | { kind: 'Node'; value: NodeInput }
  | { kind: 'Pod'; value: PodInput }
  | { kind: 'Deployment'; value: Deployment }
  | { kind: 'Service'; value: Service }
  | { kind: 'EndpointSlice'; value: EndpointSlice }
  | { kind: 'NetworkPolicy'; value: Policy }
  | { kind: 'CiliumNetworkPolicy'; value: Policy }
  | { kind: 'TrafficOptimization'; value: Policy };

type Obj = Record<string, unknown>;

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: unknown;
}

/** Convert one validated object (see validate.ts) of a supported kind. */
export function normalizeObject(kind: string, object: Obj): NormalizedObject {
  switch (kind) {
    case 'Namespace':
      return { kind, value: normalizeNamespace(object as unknown as INamespace) };
    case 'Node':
      return { kind, value: normalizeNode(object as unknown as INode) };
    case 'Pod':
      return { kind, value: normalizePod(object as unknown as IPod) };
    case 'Deployment':
      return { kind, value: normalizeDeployment(object as unknown as IDeployment) };
    case 'Service':
      return { kind, value: normalizeService(object as unknown as IService) };
    case 'EndpointSlice':
      return { kind, value: normalizeEndpointSlice(object as unknown as IEndpointSlice) };
    case 'NetworkPolicy':
      return { kind, value: normalizePolicy(kind, object) };
    case 'CiliumNetworkPolicy':
      return { kind, value: normalizePolicy(kind, object) };
    case 'TrafficOptimization':
      return { kind, value: normalizePolicy(kind, object) };
    default:
      throw new Error(`normalizeObject: unsupported kind ${kind}`);
  }
}

function meta(m: Meta | undefined, namespaced: boolean) {
  return {
    namespace: namespaced ? (m?.namespace ?? 'default') : '',
    name: m?.name ?? '',
    labels: { ...(m?.labels ?? {}) },
    annotations: { ...(m?.annotations ?? {}) },
  };
}

export function normalizeNamespace(ns: INamespace): Namespace {
  const name = ns.metadata?.name ?? '';
  const annotations = ns.metadata?.annotations;
  return {
    name,
    labels: { ...(ns.metadata?.labels ?? {}), 'kubernetes.io/metadata.name': name },
    ...(annotations && Object.keys(annotations).length > 0
      ? { annotations: { ...annotations } }
      : {}),
  };
}

export function normalizeNode(node: INode): NodeInput {
  const name = node.metadata?.name ?? '';
  const ip = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  const podCIDR = node.spec?.podCIDR ?? node.spec?.podCIDRs?.[0];
  return {
    name,
    labels: { ...(node.metadata?.labels ?? {}), 'kubernetes.io/hostname': name },
    ...(ip !== undefined ? { ip } : {}),
    ...(podCIDR !== undefined ? { podCIDR } : {}),
  };
}

export function normalizeContainers(
  spec: IPodSpec,
  annotations: Record<string, string>,
): Container[] {
  return spec.containers.map((c, i) => {
    const annotated =
      annotations[`${ANNOTATIONS.commandFor}${c.name}`] ??
      (i === 0 ? annotations[ANNOTATIONS.command] : undefined);
    const container: Container = {
      name: c.name,
      image: c.image ?? '',
      ports: (c.ports ?? []).map((p) => ({
        ...(p.name !== undefined ? { name: p.name } : {}),
        containerPort: p.containerPort,
        protocol: p.protocol ?? 'TCP',
      })),
    };
    if (annotated !== undefined) container.command = splitCommandLine(annotated);
    else if (c.command !== undefined) container.command = [...c.command, ...(c.args ?? [])];
    else if (c.args !== undefined) container.args = [...c.args];
    return container;
  });
}

export function readyFromAnnotations(annotations: Record<string, string>): boolean {
  return annotations[ANNOTATIONS.ready] !== 'false';
}

export function virtualFromAnnotations(annotations: Record<string, string>): boolean {
  return annotations[ANNOTATIONS.virtual] === 'true';
}

export function normalizePod(pod: IPod): PodInput {
  const m = meta(pod.metadata, true);
  const spec = pod.spec ?? { containers: [] };
  return {
    ...m,
    ...(spec.nodeName !== undefined && spec.nodeName !== '' ? { nodeName: spec.nodeName } : {}),
    containers: normalizeContainers(spec, m.annotations),
    conditions: {
      ready: readyFromAnnotations(m.annotations),
      terminating: pod.metadata?.deletionTimestamp !== undefined,
    },
    virtual: virtualFromAnnotations(m.annotations),
  };
}

export function normalizeDeployment(d: IDeployment): Deployment {
  const m = meta(d.metadata, true);
  const spec = d.spec;
  const templateMeta = spec?.template.metadata;
  const templateAnnotations = { ...(templateMeta?.annotations ?? {}) };
  const podSpec = spec?.template.spec ?? { containers: [] };
  return {
    ...m,
    replicas: spec?.replicas ?? 1,
    selector: { ...(spec?.selector.matchLabels ?? {}) },
    template: {
      labels: { ...(templateMeta?.labels ?? {}) },
      annotations: templateAnnotations,
      containers: normalizeContainers(podSpec, templateAnnotations),
      ...(podSpec.nodeName !== undefined && podSpec.nodeName !== ''
        ? { nodeName: podSpec.nodeName }
        : {}),
    },
  };
}

export function normalizeService(svc: IService): Service {
  const m = meta(svc.metadata, true);
  const spec = svc.spec ?? {};
  const type: ServiceType = spec.type ?? 'ClusterIP';
  const rawPorts = spec.ports ?? [];
  const ports: ServicePort[] = rawPorts.map((p) => {
    const port: ServicePort = {
      name: p.name ?? '',
      protocol: p.protocol ?? 'TCP',
      port: p.port,
      targetPort: p.targetPort ?? p.port,
    };
    if ((type === 'NodePort' || type === 'LoadBalancer') && p.nodePort !== undefined) {
      port.nodePort = p.nodePort;
    }
    return port;
  });
  const selector = spec.selector;
  const clusterIP = type === 'ExternalName' ? '' : (spec.clusterIP ?? spec.clusterIPs?.[0] ?? '');
  const service: Service = {
    ...m,
    type,
    clusterIP,
    ports,
    externalIPs: [...(spec.externalIPs ?? [])],
    sessionAffinity: spec.sessionAffinity ?? 'None',
    affinityTimeoutSeconds:
      spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS,
    externalTrafficPolicy: spec.externalTrafficPolicy ?? 'Cluster',
    internalTrafficPolicy: spec.internalTrafficPolicy ?? 'Cluster',
    publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
  };
  if (selector !== undefined && Object.keys(selector).length > 0)
    service.selector = { ...selector };
  if (type === 'LoadBalancer' && spec.loadBalancerIP !== undefined && spec.loadBalancerIP !== '') {
    service.loadBalancerIP = spec.loadBalancerIP;
  }
  if (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== undefined) {
    service.allocateLoadBalancerNodePorts = spec.allocateLoadBalancerNodePorts;
  }
  if (type === 'ExternalName' && spec.externalName !== undefined) {
    service.externalName = spec.externalName;
  }
  return service;
}

export function normalizeEndpointSlice(slice: IEndpointSlice): EndpointSlice {
  const m = meta(slice.metadata, true);
  return {
    ...m,
    serviceName: m.labels[SERVICE_NAME_LABEL] ?? '',
    addressType: slice.addressType === 'IPv6' ? 'IPv6' : 'IPv4',
    ports: (slice.ports ?? []).map((p) => ({
      name: p.name ?? '',
      protocol: p.protocol ?? 'TCP',
      port: p.port ?? 0,
    })),
    endpoints: slice.endpoints.map((e) => ({
      addresses: [...e.addresses],
      conditions: {
        ready: e.conditions?.ready ?? true,
        serving: e.conditions?.serving ?? true,
        terminating: e.conditions?.terminating ?? false,
      },
      ...(e.nodeName !== undefined ? { nodeName: e.nodeName } : {}),
      ...(e.targetRef?.name !== undefined
        ? { targetRef: `${e.targetRef.namespace ?? m.namespace}/${e.targetRef.name}` }
        : {}),
    })),
    managed: false,
  };
}

export function normalizePolicy(kind: Policy['kind'], object: Obj): Policy {
  const m = meta(object.metadata as Meta | undefined, true);
  const policy: Policy = { ...m, kind, spec: (object as Partial<INetworkPolicy>).spec };
  if (kind === 'CiliumNetworkPolicy' && Array.isArray(object.specs)) {
    policy.specs = [...(object.specs as unknown[])];
  }
  return policy;
}
