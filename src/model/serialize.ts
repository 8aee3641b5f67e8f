/**
 * The cluster state as JSON, so the lab can keep it in a file between commands: each Map
 * becomes a plain object keyed like the Map (namespace/name, or name for cluster-scoped
 * kinds), with a format version. stateFromJSON accepts the object or its JSON text.
 */
import { ModelError } from './errors.js';
import type {
  ClusterState,
  Deployment,
  EndpointSlice,
  Namespace,
  Node,
  Pod,
  Policy,
  Service,
} from './types.js';

export const STATE_FORMAT_VERSION = 1;

export interface ClusterStateJSON {
  version: typeof STATE_FORMAT_VERSION;
  namespaces: Record<string, Namespace>;
  nodes: Record<string, Node>;
  deployments: Record<string, Deployment>;
  pods: Record<string, Pod>;
  services: Record<string, Service>;
  endpointSlices: Record<string, EndpointSlice>;
  policies: Record<string, Policy>;
}

const COLLECTIONS = [
  'namespaces',
  'nodes',
  'deployments',
  'pods',
  'services',
  'endpointSlices',
  'policies',
] as const;

export function stateToJSON(state: ClusterState): ClusterStateJSON {
  return {
    version: STATE_FORMAT_VERSION,
    namespaces: Object.fromEntries(state.namespaces),
    nodes: Object.fromEntries(state.nodes),
    deployments: Object.fromEntries(state.deployments),
    pods: Object.fromEntries(state.pods),
    services: Object.fromEntries(state.services),
    endpointSlices: Object.fromEntries(state.endpointSlices),
    policies: Object.fromEntries(state.policies),
  };
}

export function stateFromJSON(json: unknown): ClusterState {
  let value = json;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (err) {
      throw new ModelError('STATE_FORMAT', `cluster state is not JSON: ${String(err)}`, {
        cause: err,
      });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelError('STATE_FORMAT', 'cluster state must be a JSON object');
  }
  const o = value as Record<string, unknown>;
  if (o.version !== STATE_FORMAT_VERSION) {
    throw new ModelError(
      'STATE_FORMAT',
      `cluster state has format version ${JSON.stringify(o.version)}, expected ${STATE_FORMAT_VERSION}`,
    );
  }
  for (const name of COLLECTIONS) {
    const c = o[name];
    if (typeof c !== 'object' || c === null || Array.isArray(c)) {
      throw new ModelError('STATE_FORMAT', `cluster state: ${name} must be an object`);
    }
  }
  const data = o as unknown as ClusterStateJSON;
  return {
    namespaces: new Map(Object.entries(data.namespaces)),
    nodes: new Map(Object.entries(data.nodes)),
    deployments: new Map(Object.entries(data.deployments)),
    pods: new Map(Object.entries(data.pods)),
    services: new Map(Object.entries(data.services)),
    endpointSlices: new Map(Object.entries(data.endpointSlices)),
    policies: new Map(Object.entries(data.policies)),
  };
}
