/**
 * The EndpointSlice controller, following Kubernetes' (pkg/controller/endpointslice and
 * staging/src/k8s.io/endpointslice: reconciler.go, utils.go):
 *
 * - Only Services with a selector get managed slices; ExternalName services get none.
 *   (Selector-less services get their slices from the user, kept as given.)
 * - Pods of the service's namespace whose labels match the selector and that have an IP are
 *   endpoints, terminating ones included (ShouldPodBeInEndpoints(pod, true)). Virtual pods have
 *   an address, so they are endpoints too.
 * - For each pod, every service port's targetPort is resolved (podutil.FindPort): a number is
 *   used as is; a name is looked up in the pod's containers' ports with the same protocol. A
 *   pod without the named port is left out of that port (it still serves the other ports).
 * - Endpoints are grouped by their resolved port list; each group becomes slices of at most
 *   maxEndpointsPerSlice (default 100) endpoints. A service with no endpoints at all gets one
 *   empty placeholder slice, as Kubernetes does.
 * - Conditions (podToEndpoint): serving = pod ready; terminating = pod terminating;
 *   ready = publishNotReadyAddresses || (serving && !terminating). nodeName and targetRef set.
 * - Labels: the service's labels, kubernetes.io/service-name, endpointslice.kubernetes.io/
 *   managed-by and, for headless services, service.kubernetes.io/headless.
 *
 * Differences, on purpose: Kubernetes names slices `<service>-<random>` and updates existing
 * slices to minimize churn; here slices are recomputed from scratch, named
 * `<service>-<hash of port set and chunk>` (deterministic), with endpoints in pod-name order.
 * The endpoints each port ends up with are the same.
 */
import { shortHash } from './hash.js';
import { ENDPOINTSLICE_CONTROLLER, MANAGED_BY_LABEL, SERVICE_NAME_LABEL } from './normalize.js';
import { matchesLabels } from './selectors.js';
import { objectKey } from './types.js';
import type {
  ClusterState,
  Endpoint,
  EndpointSlice,
  EndpointSlicePort,
  ObjectKey,
  Pod,
  Service,
  ServicePort,
} from './types.js';

export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

export interface EndpointSliceOptions {
  /** kube-controller-manager --max-endpoints-per-slice (default 100). */
  maxEndpointsPerSlice?: number;
}

/** podutil.FindPort: the port number a service port targets on this pod, if any. */
export function resolveTargetPort(pod: Pod, port: ServicePort): number | undefined {
  if (typeof port.targetPort === 'number') return port.targetPort;
  for (const container of pod.containers) {
    for (const p of container.ports) {
      if (p.name === port.targetPort && p.protocol === port.protocol) return p.containerPort;
    }
  }
  return undefined;
}

/** Whether the controller makes slices for this service. */
export function hasManagedEndpoints(svc: Service): boolean {
  return svc.type !== 'ExternalName' && svc.selector !== undefined;
}

export function podToEndpoint(pod: Pod, svc: Service): Endpoint {
  const serving = pod.conditions.ready;
  const terminating = pod.conditions.terminating;
  return {
    addresses: [pod.ip],
    conditions: {
      ready: svc.publishNotReadyAddresses || (serving && !terminating),
      serving,
      terminating,
    },
    nodeName: pod.nodeName,
    targetRef: objectKey(pod.namespace, pod.name),
  };
}

/**
 * The managed slices of one service, given candidate pods (any namespace, any labels: they are
 * filtered here). `taken` holds slice keys already in use by user slices.
 */
export function endpointSlicesForService(
  svc: Service,
  pods: Iterable<Pod>,
  options: EndpointSliceOptions = {},
  taken: ReadonlySet<ObjectKey> = new Set(),
): EndpointSlice[] {
  if (!hasManagedEndpoints(svc)) return [];
  const selector = svc.selector ?? {};
  const max = options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE;
  const selected = [...pods]
    .filter(
      (p) => p.namespace === svc.namespace && p.ip !== '' && matchesLabels(selector, p.labels),
    )
    .sort((a, b) => compare(a.name, b.name));

  const groups = new Map<string, { ports: EndpointSlicePort[]; endpoints: Endpoint[] }>();
  for (const pod of selected) {
    const ports: EndpointSlicePort[] = [];
    for (const sp of svc.ports) {
      const port = resolveTargetPort(pod, sp);
      if (port === undefined) continue;
      ports.push({ name: sp.name, protocol: sp.protocol, port });
    }
    const key = portMapKey(ports);
    const group = groups.get(key) ?? { ports, endpoints: [] };
    group.endpoints.push(podToEndpoint(pod, svc));
    groups.set(key, group);
  }

  const labels: Record<string, string> = {
    ...svc.labels,
    [SERVICE_NAME_LABEL]: svc.name,
    [MANAGED_BY_LABEL]: ENDPOINTSLICE_CONTROLLER,
  };
  if (svc.clusterIP === 'None') labels[HEADLESS_LABEL] = '';
  const usedNames = new Set<string>();
  const slice = (
    portKey: string,
    chunk: number,
    ports: EndpointSlicePort[],
    endpoints: Endpoint[],
  ) => {
    const name = sliceName(
      svc,
      portKey,
      chunk,
      (n) => usedNames.has(n) || taken.has(objectKey(svc.namespace, n)),
    );
    usedNames.add(name);
    const s: EndpointSlice = {
      namespace: svc.namespace,
      name,
      labels: { ...labels },
      annotations: {},
      serviceName: svc.name,
      addressType: 'IPv4',
      ports,
      endpoints,
      managed: true,
    };
    return s;
  };

  if (groups.size === 0) return [slice('placeholder', 0, [], [])];
  const slices: EndpointSlice[] = [];
  const keys = [...groups.keys()].sort(compare);
  for (const key of keys) {
    const group = groups.get(key);
    if (!group) continue;
    for (let chunk = 0; chunk * max < group.endpoints.length; chunk++) {
      const endpoints = group.endpoints.slice(chunk * max, (chunk + 1) * max);
      slices.push(
        slice(
          key,
          chunk,
          group.ports.map((p) => ({ ...p })),
          endpoints,
        ),
      );
    }
  }
  return slices;
}

/**
 * Every slice of the state with the managed ones recomputed: user slices are kept as given,
 * managed slices follow the services and pods.
 */
export function reconcileEndpointSlices(
  state: Pick<ClusterState, 'services' | 'pods' | 'endpointSlices'>,
  options: EndpointSliceOptions = {},
): Map<ObjectKey, EndpointSlice> {
  const out = new Map<ObjectKey, EndpointSlice>();
  for (const [key, slice] of state.endpointSlices) if (!slice.managed) out.set(key, slice);
  const taken = new Set(out.keys());
  const index = new PodIndex(state.pods.values());
  const services = [...state.services.values()].sort((a, b) =>
    compare(objectKey(a.namespace, a.name), objectKey(b.namespace, b.name)),
  );
  for (const svc of services) {
    if (!hasManagedEndpoints(svc)) continue;
    const candidates = index.candidates(svc.namespace, svc.selector ?? {});
    for (const slice of endpointSlicesForService(svc, candidates, options, taken)) {
      out.set(objectKey(slice.namespace, slice.name), slice);
    }
  }
  return out;
}

/** Pods by namespace and by label pair, so selecting is not a scan of every pod. */
export class PodIndex {
  private readonly byNamespace = new Map<string, Pod[]>();
  private readonly byLabel = new Map<string, Pod[]>();
  constructor(pods: Iterable<Pod>) {
    for (const pod of pods) {
      push(this.byNamespace, pod.namespace, pod);
      for (const [k, v] of Object.entries(pod.labels)) {
        push(this.byLabel, labelIndexKey(pod.namespace, k, v), pod);
      }
    }
  }
  /** Pods that may match: the smallest posting list of the selector's pairs. */
  candidates(namespace: string, selector: Readonly<Record<string, string>>): Pod[] {
    let best = this.byNamespace.get(namespace) ?? [];
    for (const [k, v] of Object.entries(selector)) {
      const list = this.byLabel.get(labelIndexKey(namespace, k, v)) ?? [];
      if (list.length < best.length) best = list;
    }
    return best;
  }
}

function labelIndexKey(namespace: string, key: string, value: string): string {
  return `${namespace}\u0000${key}\u0000${value}`;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** endpointutil.NewPortMapKey: the port list as a stable string. */
function portMapKey(ports: readonly EndpointSlicePort[]): string {
  return ports
    .map((p) => `${p.name}/${p.protocol}/${p.port}`)
    .sort(compare)
    .join(',');
}

function sliceName(
  svc: Service,
  portKey: string,
  chunk: number,
  isTaken: (name: string) => boolean,
): string {
  // generateName: the base is cut to 58 characters so that base + 5 fits in 63.
  const base = `${svc.name}-`.slice(0, 58);
  for (let salt = 0; ; salt++) {
    const name = base + shortHash(svc.namespace, svc.name, portKey, chunk, salt);
    if (!isTaken(name)) return name;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
