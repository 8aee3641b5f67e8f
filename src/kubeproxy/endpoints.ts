/**
 * Which endpoints kube-proxy uses for a service port on one node, and what that means for the
 * rules it writes. Pure functions over a ServicePortView, shared by the iptables and nftables
 * baselines so both follow the same rules:
 *
 * - pkg/proxy/topology.go CategorizeEndpoints: "usable" means ready; when no endpoint is ready,
 *   serving+terminating ones are used instead (independently for Cluster and Local policy).
 * - pkg/proxy/serviceport.go: UsesClusterEndpoints / UsesLocalEndpoints / ExternallyAccessible.
 * - pkg/proxy/{iptables,nftables}/proxier.go syncProxyRules: internal (ClusterIP) traffic goes to
 *   the internal policy chain, external (NodePort, LoadBalancer, externalIPs) traffic to the
 *   service's external chain; a service without any usable endpoint is REJECTed, and a Local
 *   policy without local endpoints DROPs.
 * - pkg/proxy/endpointslicecache.go: endpoints are deduplicated by "ip:port" (a local copy wins)
 *   and sorted by that string.
 *
 * Topology hints (trafficDistribution) are not part of the view, so topology mode is always ""
 * (every ready endpoint is a cluster endpoint), as kube-proxy does for hint-less endpoints.
 */
import {
  categorizeEndpoints,
  compare,
  endpointString,
  externalPolicyLocal,
  externallyAccessible,
  internalPolicyLocal,
  sortedEndpoints,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from '../model/proxy-view.js';
import type { CategorizedEndpoints } from '../model/proxy-view.js';
import type { ServicePortView } from '../model/types.js';

// The service-port predicates and CategorizeEndpoints are the model's (one copy, shared with the
// agent's plan); re-exported so both renderers keep one import.
export {
  categorizeEndpoints,
  compare,
  endpointString,
  externalPolicyLocal,
  externallyAccessible,
  internalPolicyLocal,
  sortedEndpoints,
  usesClusterEndpoints,
  usesLocalEndpoints,
};
export type { CategorizedEndpoints };

/** kube-proxy's ServicePortName.String(): "namespace/name" plus ":port" for a named port. */
export function servicePortName(
  view: Pick<ServicePortView, 'namespace' | 'serviceName' | 'portName'>,
): string {
  const base = `${view.namespace}/${view.serviceName}`;
  return view.portName === '' ? base : `${base}:${view.portName}`;
}

/** namespace/name of the Service a view belongs to: the unit kube-proxy's partial sync tracks. */
export function serviceKey(view: Pick<ServicePortView, 'namespace' | 'serviceName'>): string {
  return `${view.namespace}/${view.serviceName}`;
}

/** A ClusterIP of "None" or "" means headless: kube-proxy skips the service entirely. */
export function isProxied(view: ServicePortView): boolean {
  return view.clusterIP !== '' && view.clusterIP !== 'None';
}

/** What happens to traffic a service cannot take: REJECT (no endpoints at all) or DROP (Local). */
export type NoEndpointsVerdict = 'reject' | 'drop';

/**
 * Everything syncProxyRules decides about one service port before writing rules; both
 * renderers turn this into their own syntax.
 */
export interface ServicePortPlan {
  view: ServicePortView;
  /** ServicePortName.String(), used in comments. */
  name: string;
  /** "tcp", "udp" or "sctp". */
  protocol: string;
  endpoints: CategorizedEndpoints;
  hasEndpoints: boolean;
  /** ClusterIP traffic has somewhere to go (false: iTP=Local without local endpoints). */
  hasInternalEndpoints: boolean;
  /** External traffic has somewhere to go (false: eTP=Local without local endpoints). */
  hasExternalEndpoints: boolean;
  /** The internal policy chain is the Local one (iTP=Local). */
  internalPolicyLocal: boolean;
  /** The external policy chain is the Local one (eTP=Local on an externally accessible port). */
  externalPolicyLocal: boolean;
  usesClusterPolicyChain: boolean;
  usesLocalPolicyChain: boolean;
  /** The service gets an external (KUBE-EXT-* / external-*) chain. */
  usesExternalTrafficChain: boolean;
  /** Verdict for ClusterIP traffic when hasInternalEndpoints is false. */
  internalVerdict: NoEndpointsVerdict | null;
  /** Verdict for external traffic when hasExternalEndpoints is false. */
  externalVerdict: NoEndpointsVerdict | null;
}

export function planServicePort(view: ServicePortView): ServicePortPlan {
  const endpoints = categorizeEndpoints(view);
  const hasEndpoints = endpoints.hasAnyEndpoints;
  const iLocal = internalPolicyLocal(view);
  const eLocal = externalPolicyLocal(view);
  const localCount = endpoints.localEndpoints?.length ?? 0;
  const hasInternalEndpoints = hasEndpoints && !(iLocal && localCount === 0);
  const hasExternalEndpoints = hasEndpoints && !(eLocal && localCount === 0);
  let internalVerdict: NoEndpointsVerdict | null = null;
  let externalVerdict: NoEndpointsVerdict | null = null;
  if (!hasEndpoints) {
    internalVerdict = 'reject';
    externalVerdict = 'reject';
  } else {
    if (!hasInternalEndpoints) internalVerdict = 'drop';
    if (!hasExternalEndpoints) externalVerdict = 'drop';
  }
  return {
    view,
    name: servicePortName(view),
    protocol: view.protocol.toLowerCase(),
    endpoints,
    hasEndpoints,
    hasInternalEndpoints,
    hasExternalEndpoints,
    internalPolicyLocal: iLocal,
    externalPolicyLocal: eLocal,
    usesClusterPolicyChain:
      (endpoints.clusterEndpoints?.length ?? 0) > 0 && usesClusterEndpoints(view),
    usesLocalPolicyChain: localCount > 0 && usesLocalEndpoints(view),
    usesExternalTrafficChain: hasEndpoints && externallyAccessible(view),
    internalVerdict,
    externalVerdict,
  };
}

/**
 * The views kube-proxy would program, in a deterministic order (kube-proxy walks a Go map, so
 * its order is random; ours is by ServicePortName, then protocol).
 */
export function planServices(views: readonly ServicePortView[]): ServicePortPlan[] {
  return views
    .filter(isProxied)
    .map(planServicePort)
    .sort((a, b) => compare(a.name, b.name) || compare(a.protocol, b.protocol));
}

/**
 * The Services (namespace/name) whose ports or endpoints differ between two sets of views:
 * kube-proxy's UpdatedServices (a Service or its EndpointSlices changed), which a partial sync
 * rewrites. Added and removed services count as changed.
 */
export function changedServices(
  previous: readonly ServicePortView[],
  current: readonly ServicePortView[],
): Set<string> {
  const digest = (views: readonly ServicePortView[]): Map<string, string> => {
    const byService = new Map<string, ServicePortView[]>();
    for (const v of views) {
      const key = serviceKey(v);
      const list = byService.get(key) ?? [];
      list.push(v);
      byService.set(key, list);
    }
    const out = new Map<string, string>();
    for (const [key, list] of byService) {
      const normalized = list
        .map((v) => ({ ...v, endpoints: sortedEndpoints(v.endpoints) }))
        .sort((a, b) => compare(a.portName, b.portName) || compare(a.protocol, b.protocol));
      out.set(key, JSON.stringify(normalized));
    }
    return out;
  };
  const before = digest(previous);
  const after = digest(current);
  const changed = new Set<string>();
  for (const [key, value] of after) if (before.get(key) !== value) changed.add(key);
  for (const key of before.keys()) if (!after.has(key)) changed.add(key);
  return changed;
}
