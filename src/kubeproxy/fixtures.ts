/**
 * Views for tests and measurements of the kube-proxy baselines: one helper for a hand-written
 * service port, one for N synthetic services of M endpoints from the lab's address plan.
 */
import type { EndpointView, ServicePortView } from '../model/types.js';

export function endpoint(ip: string, port: number, over: Partial<EndpointView> = {}): EndpointView {
  return { ip, port, isLocal: false, ready: true, serving: true, terminating: false, ...over };
}

export function view(over: Partial<ServicePortView> & { serviceName: string }): ServicePortView {
  const namespace = over.namespace ?? 'default';
  const portName = over.portName ?? '';
  return {
    id: `${namespace}/${over.serviceName}:${portName}`,
    namespace,
    portName,
    protocol: 'TCP',
    clusterIP: '198.19.0.10',
    port: 80,
    externalIPs: [],
    loadBalancerIPs: [],
    sessionAffinity: null,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    endpoints: [],
    ...over,
  };
}

/**
 * `services` ClusterIP services (198.19.0.0/17, in order) of `endpointsPerService` ready
 * endpoints each (pod addresses from 198.18.16.0/20, port 8080), all in namespace "bench".
 */
export function syntheticViews(services: number, endpointsPerService: number): ServicePortView[] {
  const views: ServicePortView[] = [];
  let pod = 0;
  for (let s = 0; s < services; s++) {
    const endpoints: EndpointView[] = [];
    for (let e = 0; e < endpointsPerService; e++, pod++) {
      // 198.18.16.0/20 holds 4096 addresses; wrap around (addresses may repeat across services).
      const n = (pod % 4094) + 1;
      endpoints.push(endpoint(`198.18.${16 + (n >> 8)}.${n & 255}`, 8080));
    }
    const ip = s + 10;
    views.push(
      view({
        namespace: 'bench',
        serviceName: `svc-${s}`,
        portName: 'http',
        clusterIP: `198.19.${ip >> 8}.${ip & 255}`,
        endpoints,
      }),
    );
  }
  return views;
}
