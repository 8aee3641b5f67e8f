/**
 * What an updated object keeps from the object it replaces, as the API server decides it:
 * a Service keeps its ClusterIP, the NodePorts of its ports (matched by port and protocol,
 * which is how `kubectl apply` merges the ports list) and its load-balancer address, unless
 * the new manifest names other values. Used by validation (conflicts) and by the state
 * (allocation), so both agree.
 */
import type { Service, ServicePort } from './types.js';

/** A ClusterIP that is an address (not '' and not 'None'). */
export const isAllocatedIP = (ip: string): boolean => ip !== '' && ip !== 'None';

export function needsClusterIP(svc: Service): boolean {
  return svc.type !== 'ExternalName' && svc.clusterIP !== 'None';
}

/** Ports of this type get NodePorts allocated when they have none. */
export function allocatesNodePorts(svc: Service): boolean {
  return (
    svc.type === 'NodePort' ||
    (svc.type === 'LoadBalancer' && svc.allocateLoadBalancerNodePorts !== false)
  );
}

/** The ClusterIP (or 'None') the service keeps from existing when it names none itself. */
export function keptClusterIP(existing: Service | undefined, next: Service): string | undefined {
  if (!existing || next.type === 'ExternalName' || existing.type === 'ExternalName')
    return undefined;
  if (next.clusterIP !== '') return undefined;
  return existing.clusterIP === '' ? undefined : existing.clusterIP;
}

/** The NodePort a port keeps from the existing service when it names none itself. */
export function keptNodePort(
  existing: Service | undefined,
  next: Service,
  port: ServicePort,
): number | undefined {
  if (!existing || port.nodePort !== undefined) return undefined;
  if (next.type !== 'NodePort' && next.type !== 'LoadBalancer') return undefined;
  return existing.ports.find((p) => p.port === port.port && p.protocol === port.protocol)?.nodePort;
}

export function keptLoadBalancerIP(
  existing: Service | undefined,
  next: Service,
): string | undefined {
  if (!existing || next.type !== 'LoadBalancer' || next.loadBalancerIP !== undefined)
    return undefined;
  return existing.loadBalancerIP;
}

/** The ClusterIP change an update may not make (Kubernetes: field is immutable). */
export function clusterIPChange(existing: Service | undefined, next: Service): string | undefined {
  if (!existing || next.type === 'ExternalName' || existing.type === 'ExternalName')
    return undefined;
  if (next.clusterIP === '' || existing.clusterIP === '') return undefined;
  return next.clusterIP === existing.clusterIP ? undefined : existing.clusterIP;
}
