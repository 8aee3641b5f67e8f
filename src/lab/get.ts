/**
 * `sluice lab get`: the cluster state as kubectl shows it — a table (optionally wide), YAML or
 * JSON of the normalized objects.
 */
import { stringify } from 'yaml';
import type { ClusterState, EndpointSlice, Node, Pod, Policy, Service } from '../model/index.js';

export const GET_KINDS = ['pods', 'services', 'endpointslices', 'nodes', 'policies'] as const;
export type GetKind = (typeof GET_KINDS)[number];
export type GetOutput = 'table' | 'wide' | 'yaml' | 'json';

export interface GetOptions {
  /** Only this namespace; all namespaces when undefined. */
  namespace?: string;
  output: GetOutput;
}

type Row = Record<string, string>;

function table(rows: Row[], columns: string[]): string {
  if (rows.length === 0) return 'No resources found.\n';
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('   ')
      .trimEnd();
  return (
    [line(columns), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n') + '\n'
  );
}

function podRow(p: Pod): Row {
  const status = p.conditions.terminating ? 'Terminating' : p.virtual ? 'Virtual' : 'Running';
  return {
    NAMESPACE: p.namespace,
    NAME: p.name,
    READY: p.conditions.ready && !p.conditions.terminating ? 'true' : 'false',
    STATUS: status,
    IP: p.ip,
    NODE: p.nodeName,
    PORTS: p.containers
      .flatMap((c) =>
        c.ports.map(
          (port) => `${port.name ? `${port.name}:` : ''}${port.containerPort}/${port.protocol}`,
        ),
      )
      .join(','),
  };
}

function serviceRow(s: Service): Row {
  const external = [...(s.loadBalancerIP ? [s.loadBalancerIP] : []), ...s.externalIPs];
  return {
    NAMESPACE: s.namespace,
    NAME: s.name,
    TYPE: s.type,
    'CLUSTER-IP': s.clusterIP,
    'EXTERNAL-IP': external.join(',') || '<none>',
    'PORT(S)': s.ports
      .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}`)
      .join(','),
    SELECTOR: s.selector
      ? Object.entries(s.selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')
      : '<none>',
    AFFINITY: s.sessionAffinity,
    'EXTERNAL-POLICY': s.externalTrafficPolicy,
  };
}

function sliceRow(e: EndpointSlice): Row {
  const conds = (c: { ready: boolean; serving: boolean; terminating: boolean }) =>
    c.ready
      ? ''
      : c.terminating
        ? c.serving
          ? '(terminating)'
          : '(terminating,not serving)'
        : '(not ready)';
  return {
    NAMESPACE: e.namespace,
    NAME: e.name,
    SERVICE: e.serviceName,
    ADDRESSTYPE: e.addressType,
    PORTS: e.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}`).join(',') || '<unset>',
    ENDPOINTS:
      e.endpoints.map((ep) => `${ep.addresses.join('/')}${conds(ep.conditions)}`).join(',') ||
      '<none>',
  };
}

const nodeRow = (n: Node): Row => ({ NAME: n.name, IP: n.ip, 'POD-CIDR': n.podCIDR });
const policyRow = (p: Policy): Row => ({ NAMESPACE: p.namespace, NAME: p.name, KIND: p.kind });

const VIEWS = {
  pods: {
    list: (s: ClusterState) => [...s.pods.values()],
    row: podRow,
    columns: ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'IP', 'NODE'],
    wide: ['PORTS'],
  },
  services: {
    list: (s: ClusterState) => [...s.services.values()],
    row: serviceRow,
    columns: ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)'],
    wide: ['SELECTOR', 'AFFINITY', 'EXTERNAL-POLICY'],
  },
  endpointslices: {
    list: (s: ClusterState) => [...s.endpointSlices.values()],
    row: sliceRow,
    columns: ['NAMESPACE', 'NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS'],
    wide: ['SERVICE'],
  },
  nodes: {
    list: (s: ClusterState) => [...s.nodes.values()],
    row: nodeRow,
    columns: ['NAME', 'IP', 'POD-CIDR'],
    wide: [],
  },
  policies: {
    list: (s: ClusterState) => [...s.policies.values()],
    row: policyRow,
    columns: ['NAMESPACE', 'NAME', 'KIND'],
    wide: [],
  },
} as const;

export function formatGet(state: ClusterState, kind: GetKind, options: GetOptions): string {
  const view = VIEWS[kind];
  const objects = (view.list(state) as { namespace?: string; name: string }[])
    .filter(
      (o) =>
        options.namespace === undefined ||
        o.namespace === undefined ||
        o.namespace === options.namespace,
    )
    .sort((a, b) =>
      `${a.namespace ?? ''}/${a.name}`.localeCompare(`${b.namespace ?? ''}/${b.name}`),
    );
  if (options.output === 'json') return `${JSON.stringify(objects, null, 2)}\n`;
  if (options.output === 'yaml') return stringify(objects);
  const rows = objects.map((o) => (view.row as (x: unknown) => Row)(o));
  const columns = [...view.columns, ...(options.output === 'wide' ? view.wide : [])].filter(
    (c) => !(c === 'NAMESPACE' && options.namespace !== undefined),
  );
  return table(rows, columns);
}
