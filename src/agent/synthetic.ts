/**
 * A synthetic cluster for the reconcile's scale tests and the control-plane bench: N ClusterIP
 * Services of E endpoints each (one EndpointSlice per Service), spread over two nodes, as a
 * source would hand them to the agent, and the one-object edits a watch would report.
 */
import type { ClusterState, EndpointSlice, ObjectKey } from '../model/index.js';
import { emptyState, formatIPv4, objectKey } from '../model/index.js';
import type { SourceChanges } from '../sources/source.js';

export const SYNTHETIC_NAMESPACE = 'bench';
export const SYNTHETIC_NODES = [
  { name: 'node-0', ip: '198.18.0.10' },
  { name: 'node-1', ip: '198.18.0.11' },
];

const serviceName = (i: number): string => `svc-${i}`;

/** Service i: ClusterIP 10.96.0.0/12 + i, endpoints 10.(64+...) unique per service and index. */
export function syntheticCluster(services: number, endpointsPerService: number): ClusterState {
  const state = emptyState();
  state.namespaces.set(SYNTHETIC_NAMESPACE, {
    name: SYNTHETIC_NAMESPACE,
    labels: { 'kubernetes.io/metadata.name': SYNTHETIC_NAMESPACE },
  });
  for (const n of SYNTHETIC_NODES) {
    state.nodes.set(n.name, { name: n.name, labels: {}, ip: n.ip, podCIDR: '' });
  }
  for (let i = 0; i < services; i++) putService(state, i, endpointsPerService);
  return state;
}

function putService(state: ClusterState, i: number, endpoints: number): void {
  const name = serviceName(i);
  state.services.set(objectKey(SYNTHETIC_NAMESPACE, name), {
    namespace: SYNTHETIC_NAMESPACE,
    name,
    labels: {},
    annotations: {},
    type: 'ClusterIP',
    clusterIP: formatIPv4(0x0a600000 + i + 10),
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
    externalIPs: [],
    sessionAffinity: 'None',
    affinityTimeoutSeconds: 10800,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    publishNotReadyAddresses: false,
  });
  const slice = syntheticSlice(i, endpoints);
  state.endpointSlices.set(objectKey(slice.namespace, slice.name), slice);
}

function syntheticSlice(i: number, endpoints: number): EndpointSlice {
  return {
    namespace: SYNTHETIC_NAMESPACE,
    name: `${serviceName(i)}-abcde`,
    labels: { 'kubernetes.io/service-name': serviceName(i) },
    annotations: {},
    serviceName: serviceName(i),
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: Array.from({ length: endpoints }, (_, j) => ({
      addresses: [formatIPv4(0x0a400000 + i * 64 + j)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: (SYNTHETIC_NODES[j % SYNTHETIC_NODES.length] as { name: string }).name,
    })),
    managed: true,
  };
}

const noChanges = (): {
  services: Set<ObjectKey>;
  endpointSlices: Set<ObjectKey>;
  nodes: Set<string>;
} => ({
  services: new Set(),
  endpointSlices: new Set(),
  nodes: new Set(),
});

/**
 * One endpoint change, as a watch event: service i's slice loses its first endpoint, or gets it
 * back when it is already gone (so repeated changes alternate). Edits the state in place (a new
 * slice object, as an informer's store does) and says what changed.
 */
export function toggleFirstEndpoint(state: ClusterState, i: number): SourceChanges {
  const key = objectKey(SYNTHETIC_NAMESPACE, `${serviceName(i)}-abcde`);
  const slice = state.endpointSlices.get(key);
  if (!slice) throw new Error(`synthetic cluster: no slice ${key}`);
  const firstAddress = formatIPv4(0x0a400000 + i * 64);
  const hasFirst = slice.endpoints[0]?.addresses[0] === firstAddress;
  const endpoints = hasFirst
    ? slice.endpoints.slice(1)
    : syntheticSlice(i, slice.endpoints.length + 1).endpoints;
  state.endpointSlices.set(key, { ...slice, endpoints });
  const changes = noChanges();
  changes.endpointSlices.add(key);
  return changes;
}

/** A new Service i (past the existing ones) and its slice, as two watch events. */
export function addService(state: ClusterState, i: number, endpoints: number): SourceChanges {
  putService(state, i, endpoints);
  const changes = noChanges();
  changes.services.add(objectKey(SYNTHETIC_NAMESPACE, serviceName(i)));
  changes.endpointSlices.add(objectKey(SYNTHETIC_NAMESPACE, `${serviceName(i)}-abcde`));
  return changes;
}
