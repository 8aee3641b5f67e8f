/**
 * What kube-proxy's ServiceChangeTracker and EndpointsChangeTracker hand its proxier on one
 * node (pkg/proxy: serviceport.go, endpointslicecache.go, topology.go), computed from the
 * state, so the iptables and nftables baselines and the sluice agent all start from the same
 * view.
 *
 * - Services without a ClusterIP (headless, 'None') and ExternalName services are skipped
 *   (ShouldSkipService).
 * - One view per service port, id = ServicePortName.String(): "ns/name:port", or "ns/name"
 *   for an unnamed port.
 * - Endpoints: from every EndpointSlice labelled kubernetes.io/service-name=<service> in the
 *   namespace (managed or not), taking the slice ports whose name and protocol match the
 *   service port; the endpoint's first address; de-duplicated by ip:port (a local copy wins).
 *   Sorted by the "ip:port" string, as kube-proxy sorts them (byEndpoint).
 * - isLocal: the endpoint's nodeName is this node.
 * - sessionAffinity: { timeoutSeconds } for ClientIP, else null; loadBalancerIPs: the
 *   allocated ingress address.
 *
 * categorizeEndpoints is kube-proxy's CategorizeEndpoints (without topology hints): which
 * endpoints serve cluster traffic and which serve local-policy traffic on this node.
 */
import type {
  ClusterState,
  EndpointSlice,
  EndpointView,
  ObjectKey,
  Service,
  ServicePortView,
} from './types.js';
import { objectKey } from './types.js';

/** kube-proxy's ServicePortName.String(). */
export function servicePortName(namespace: string, name: string, port: string): string {
  return port === '' ? `${namespace}/${name}` : `${namespace}/${name}:${port}`;
}

export function proxyView(state: ClusterState, nodeName: string): ServicePortView[] {
  const slicesByService = endpointSlicesByService(state.endpointSlices.values());
  const views: ServicePortView[] = [];
  for (const svc of state.services.values()) {
    const slices = slicesByService.get(objectKey(svc.namespace, svc.name)) ?? [];
    views.push(...serviceViews(svc, slices, nodeName));
  }
  return views.sort(compareViews);
}

/** The order of proxyView: by ServicePortName, then protocol. */
export function compareViews(a: ServicePortView, b: ServicePortView): number {
  return compare(a.id, b.id) || compare(a.protocol, b.protocol);
}

/** EndpointSlices by the Service (namespace/name) their kubernetes.io/service-name names. */
export function endpointSlicesByService(
  slices: Iterable<EndpointSlice>,
): Map<ObjectKey, EndpointSlice[]> {
  const byService = new Map<ObjectKey, EndpointSlice[]>();
  for (const slice of slices) {
    if (slice.serviceName === '') continue;
    const key = objectKey(slice.namespace, slice.serviceName);
    const list = byService.get(key) ?? [];
    list.push(slice);
    byService.set(key, list);
  }
  return byService;
}

/**
 * The views of one Service from its EndpointSlices (any order), sorted like proxyView: the unit
 * the agent recomputes when a Service or one of its slices changes.
 */
export function serviceViews(
  svc: Service,
  serviceSlices: readonly EndpointSlice[],
  nodeName: string,
): ServicePortView[] {
  if (svc.clusterIP === '' || svc.clusterIP === 'None' || svc.type === 'ExternalName') return [];
  // Most Services have one slice: nothing to order, and no copy for each of 10k Services.
  const slices =
    serviceSlices.length <= 1
      ? serviceSlices
      : [...serviceSlices].sort((a, b) => compare(a.name, b.name));
  const views: ServicePortView[] = [];
  for (const port of svc.ports) {
    const found: EndpointView[] = [];
    for (const slice of slices) {
      if (slice.addressType !== 'IPv4') continue;
      for (const sp of slice.ports) {
        if (sp.name !== port.name || sp.protocol !== port.protocol) continue;
        for (const ep of slice.endpoints) {
          const ip = ep.addresses[0];
          if (ip === undefined) continue;
          found.push(endpointView(ip, sp.port, ep, nodeName));
        }
      }
    }
    const endpoints = sortedUnique(found);
    const view: ServicePortView = {
      id: servicePortName(svc.namespace, svc.name, port.name),
      namespace: svc.namespace,
      serviceName: svc.name,
      portName: port.name,
      protocol: port.protocol,
      clusterIP: svc.clusterIP,
      port: port.port,
      externalIPs: [...svc.externalIPs],
      loadBalancerIPs:
        svc.type === 'LoadBalancer' && svc.loadBalancerIP ? [svc.loadBalancerIP] : [],
      sessionAffinity:
        svc.sessionAffinity === 'ClientIP' ? { timeoutSeconds: svc.affinityTimeoutSeconds } : null,
      externalTrafficPolicy: svc.externalTrafficPolicy,
      internalTrafficPolicy: svc.internalTrafficPolicy,
      endpoints,
    };
    if (port.nodePort !== undefined) view.nodePort = port.nodePort;
    views.push(view);
  }
  return views.sort(compareViews);
}

/**
 * One endpoint's view, built whole: a property added after an object literal (nodeName, pod)
 * costs a property array of its own, for each of 100k endpoints at 10k services.
 */
function endpointView(
  ip: string,
  port: number,
  ep: EndpointSlice['endpoints'][number],
  nodeName: string,
): EndpointView {
  const isLocal = ep.nodeName !== undefined && ep.nodeName === nodeName;
  const { ready, serving, terminating } = ep.conditions;
  if (ep.targetRef !== undefined) {
    return ep.nodeName === undefined
      ? { ip, port, isLocal, ready, serving, terminating, pod: ep.targetRef }
      : {
          ip,
          port,
          isLocal,
          ready,
          serving,
          terminating,
          nodeName: ep.nodeName,
          pod: ep.targetRef,
        };
  }
  return ep.nodeName === undefined
    ? { ip, port, isLocal, ready, serving, terminating }
    : { ip, port, isLocal, ready, serving, terminating, nodeName: ep.nodeName };
}

/**
 * The endpoints sorted by "ip:port" with one per "ip:port": the last local one where there is
 * one, else the first (slice order). The sort is stable, so the copies of one "ip:port" stay
 * in slice order next to each other.
 */
function sortedUnique(found: EndpointView[]): EndpointView[] {
  // Slices mostly list endpoints in order already, each once; a check costs less than a sort's
  // copy, and then there is nothing to de-duplicate either.
  if (strictlyAscending(found)) return found;
  if (!ascending(found)) found.sort(compareIpPort);
  const out: EndpointView[] = [];
  for (let i = 0; i < found.length;) {
    let pick = found[i] as EndpointView;
    let j = i + 1;
    for (; j < found.length && compareIpPort(pick, found[j] as EndpointView) === 0; j++) {
      if ((found[j] as EndpointView).isLocal) pick = found[j] as EndpointView;
    }
    if (!pick.isLocal) pick = found[i] as EndpointView;
    out.push(pick);
    i = j;
  }
  return out;
}

function strictlyAscending(endpoints: readonly EndpointView[]): boolean {
  for (let i = 1; i < endpoints.length; i++) {
    if (compareIpPort(endpoints[i - 1] as EndpointView, endpoints[i] as EndpointView) >= 0) {
      return false;
    }
  }
  return true;
}

function ascending(endpoints: readonly EndpointView[]): boolean {
  for (let i = 1; i < endpoints.length; i++) {
    if (compareIpPort(endpoints[i - 1] as EndpointView, endpoints[i] as EndpointView) > 0) {
      return false;
    }
  }
  return true;
}

const COLON = 0x3a;

/**
 * compare(`${a.ip}:${a.port}`, `${b.ip}:${b.port}`), without building either string: every
 * endpoint of every service is ordered this way, a million of them at 100k services.
 */
export function compareIpPort(
  a: Pick<EndpointView, 'ip' | 'port'>,
  b: Pick<EndpointView, 'ip' | 'port'>,
): number {
  const x = a.ip;
  const y = b.ip;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x.charCodeAt(i) - y.charCodeAt(i);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  if (x.length === y.length) return compare(String(a.port), String(b.port));
  // One address is a prefix of the other: the shorter goes on with ':'.
  const next = x.length > y.length ? x.charCodeAt(n) : y.charCodeAt(n);
  if (next === COLON) return compare(`${x}:${a.port}`, `${y}:${b.port}`); // not an IPv4 address
  return x.length < y.length === COLON < next ? -1 : 1;
}

/** ServicePort.ExternallyAccessible(): a NodePort, a load-balancer address or external IPs. */
export function externallyAccessible(view: ServicePortView): boolean {
  return (
    view.nodePort !== undefined || view.loadBalancerIPs.length > 0 || view.externalIPs.length > 0
  );
}

/** externalTrafficPolicy Local, which only means something for externally accessible ports. */
export function externalPolicyLocal(view: ServicePortView): boolean {
  return externallyAccessible(view) && view.externalTrafficPolicy === 'Local';
}

export function internalPolicyLocal(view: ServicePortView): boolean {
  return view.internalTrafficPolicy === 'Local';
}

/** UsesClusterEndpoints: internal policy Cluster, or any external access (for short-circuit). */
export function usesClusterEndpoints(view: ServicePortView): boolean {
  return !internalPolicyLocal(view) || externallyAccessible(view);
}

/** UsesLocalEndpoints: internal policy Local, or external policy Local. */
export function usesLocalEndpoints(view: ServicePortView): boolean {
  return internalPolicyLocal(view) || externalPolicyLocal(view);
}

/** kube-proxy's Endpoint.String(): "ip:port", IPv6 in brackets. */
export function endpointString(ep: Pick<EndpointView, 'ip' | 'port'>): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/**
 * The endpoints of a view the way kube-proxy's endpoint map holds them: one per "ip:port" (the
 * local copy wins when slices disagree) and sorted by that string.
 */
export function sortedEndpoints(endpoints: readonly EndpointView[]): EndpointView[] {
  // Views come sorted and de-duplicated (serviceViews): then there is nothing to do.
  if (inEndpointOrder(endpoints)) return [...endpoints];
  const byKey = new Map<string, EndpointView>();
  for (const ep of endpoints) {
    const key = endpointString(ep);
    if (!byKey.has(key) || ep.isLocal) byKey.set(key, ep);
  }
  return [...byKey.entries()].sort(([a], [b]) => compare(a, b)).map(([, ep]) => ep);
}

/** Whether the "ip:port" strings are strictly ascending (IPv4 only: IPv6 ones get brackets). */
function inEndpointOrder(endpoints: readonly EndpointView[]): boolean {
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i] as EndpointView;
    if (hasColon(ep.ip)) return false;
    if (i > 0 && compareIpPort(endpoints[i - 1] as EndpointView, ep) >= 0) return false;
  }
  return true;
}

/** ip.includes(':'), as a loop the JIT keeps inline: it runs for each of 100k endpoints. */
function hasColon(ip: string): boolean {
  for (let i = 0; i < ip.length; i++) if (ip.charCodeAt(i) === COLON) return true;
  return false;
}

export interface CategorizedEndpoints {
  /**
   * For Cluster-policy traffic: ready endpoints, else serving-terminating ones; null when the
   * service never uses Cluster policy (the iptables and nftables renderers need the nil-vs-empty
   * distinction: no chain at all vs an empty one).
   */
  clusterEndpoints: EndpointView[] | null;
  /** For Local-policy traffic: local ready endpoints, else local serving-terminating ones; null when never used. */
  localEndpoints: EndpointView[] | null;
  /** Union of the two (sorted): every endpoint some traffic of this node may reach. */
  allReachableEndpoints: EndpointView[];
  /** Whether the service has any usable endpoint anywhere (else: REJECT at once). */
  hasAnyEndpoints: boolean;
}

const servingTerminating = (ep: EndpointView): boolean => ep.serving && ep.terminating;

/**
 * kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go, topology mode "": no hints). The one
 * copy: the agent's plan and the iptables and nftables baselines all use it.
 */
export function categorizeEndpoints(view: ServicePortView): CategorizedEndpoints {
  const endpoints = sortedEndpoints(view.endpoints);
  let clusterEndpoints: EndpointView[] | null = null;
  let localEndpoints: EndpointView[] | null = null;
  let hasAnyEndpoints = false;
  let useServingTerminating = false;

  if (usesClusterEndpoints(view)) {
    clusterEndpoints = endpoints.filter((ep) => ep.ready);
    // No ready endpoint anywhere: fall back to serving, terminating ones.
    if (clusterEndpoints.length === 0) clusterEndpoints = endpoints.filter(servingTerminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints(view)) {
    return {
      clusterEndpoints,
      localEndpoints,
      allReachableEndpoints: clusterEndpoints ?? [],
      hasAnyEndpoints,
    };
  }

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (servingTerminating(ep)) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) {
    localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.ready);
  } else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    localEndpoints = endpoints.filter((ep) => ep.isLocal && servingTerminating(ep));
  }

  if (clusterEndpoints === null) {
    return {
      clusterEndpoints,
      localEndpoints,
      allReachableEndpoints: localEndpoints ?? [],
      hasAnyEndpoints,
    };
  }
  if (!useServingTerminating) {
    // localEndpoints holds only ready endpoints, all of which are in clusterEndpoints.
    return {
      clusterEndpoints,
      localEndpoints,
      allReachableEndpoints: clusterEndpoints,
      hasAnyEndpoints,
    };
  }
  return {
    clusterEndpoints,
    localEndpoints,
    allReachableEndpoints: sortedEndpoints([...clusterEndpoints, ...(localEndpoints ?? [])]),
    hasAnyEndpoints,
  };
}

/** Byte-wise string order, as Go's sort on strings. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
