/**
 * The lab's 'sluice' proxy mode: one sluice agent per node, inside the node's network namespace
 * and cgroup, exactly as on a real node. The lab is the agents' API server: after each change
 * it writes the cluster's Nodes, Services and EndpointSlices into <stateDir>/manifests/ (one
 * file, replaced atomically), which every agent watches, and waits until each agent's health
 * endpoint reports that content programmed.
 *
 * Agents are recorded lab processes (`lab down` ends them by pid); their pins live under the
 * lab's pin directory (<pins>/<node>), which `lab down` removes with everything attached.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { AgentConfigInput } from '../agent/config.js';
import { AGENT_V8_FLAGS } from '../agent/v8-flags.js';
import type { ManifestFile } from '../sources/manifests.js';
import { manifestsDigest } from '../sources/manifests.js';
import { fnv1a32 } from '../model/hash.js';
import type { ClusterState, EndpointSlice, Node, Service } from '../model/index.js';
import type { LabTopology, NodeRecord, ProcessRecord } from './topology/index.js';
import { LabError } from './topology/index.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
export const AGENT_HEALTH_PORT = 10256;
const BASE_FILE = 'cluster-base.json';
const SHARD_PREFIX = 'cluster-svc-';
/** Service files: enough that one holds ~1/64 of the services, few enough to list quickly. */
const SERVICE_SHARDS = 64;
/** The first start loads and attaches the datapath; later changes take milliseconds. */
const PROGRAMMED_TIMEOUT_MS = 30_000;

export const manifestsDir = (stateDir: string): string => join(stateDir, 'manifests');
const agentsDir = (stateDir: string): string => join(stateDir, 'agents');
const overridesFile = (stateDir: string): string => join(agentsDir(stateDir), 'overrides.json');
const agentLog = (stateDir: string, node: string): string =>
  join(stateDir, 'logs', `agent-${node}.log`);
export const agentPinRoot = (lab: LabTopology, node: string): string => join(lab.pinDir, node);

/** Forgets the agents' inputs (a new lab starts from nothing). */
export function resetAgentFiles(stateDir: string): void {
  rmSync(manifestsDir(stateDir), { recursive: true, force: true });
  rmSync(agentsDir(stateDir), { recursive: true, force: true });
}

/**
 * The cluster as the agents read it: the objects kube-proxy watches, as the API server would
 * return them, and what socket acceleration reads (Namespaces, the pods that run, not virtual
 * ones, TrafficOptimizations and CiliumNetworkPolicies).
 *
 * Spread over files so that a change rewrites little: `cluster-base.json` holds Nodes,
 * Namespaces, Pods and policies; each Service goes with its EndpointSlices into one of
 * SERVICE_SHARDS files (`cluster-svc-NN.json`, by a hash of the Service's namespace/name). The
 * agents' manifests source re-reads only the files that changed, so a pod's readiness flip costs
 * it one shard's parse (1/64 of the services), not the whole cluster's.
 */
export function clusterManifestFiles(state: ClusterState): ManifestFile[] {
  const shards = new Map<number, object[]>();
  const shardOf = (namespace: string, service: string): object[] => {
    const n = fnv1a32(`${namespace}/${service}`) % SERVICE_SHARDS;
    let items = shards.get(n);
    if (!items) shards.set(n, (items = []));
    return items;
  };
  const byKey = <T extends { namespace: string; name: string }>(xs: Iterable<T>): T[] =>
    [...xs].sort((a, b) => compareKeys(a, b));
  for (const s of byKey(state.services.values()))
    shardOf(s.namespace, s.name).push(serviceObject(s));
  for (const e of byKey(state.endpointSlices.values())) {
    shardOf(e.namespace, e.serviceName || e.name).push(sliceObject(e));
  }
  const list = (items: object[]): string =>
    `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1)}\n`;
  const files: ManifestFile[] = [
    {
      name: BASE_FILE,
      content: list([...[...state.nodes.values()].map(nodeObject), ...accelerationObjects(state)]),
    },
  ];
  for (const [n, items] of [...shards].sort(([a], [b]) => a - b)) {
    files.push({ name: `${SHARD_PREFIX}${String(n).padStart(2, '0')}.json`, content: list(items) });
  }
  return files;
}

function compareKeys(
  a: { namespace: string; name: string },
  b: { namespace: string; name: string },
): number {
  const x = `${a.namespace}/${a.name}`;
  const y = `${b.namespace}/${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

function nodeObject(n: Node): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: n.labels },
    spec: { podCIDR: n.podCIDR },
    status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
  };
}

function serviceObject(s: Service): object {
  const externallyAccessible =
    s.type === 'NodePort' || s.type === 'LoadBalancer' || s.externalIPs.length > 0;
  const spec: Record<string, unknown> = {
    type: s.type,
    ports: s.ports.map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      protocol: p.protocol,
      port: p.port,
      targetPort: p.targetPort,
      ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
    })),
    sessionAffinity: s.sessionAffinity,
    internalTrafficPolicy: s.internalTrafficPolicy,
    publishNotReadyAddresses: s.publishNotReadyAddresses,
  };
  if (s.type === 'ExternalName') spec.externalName = s.externalName;
  else spec.clusterIP = s.clusterIP;
  if (s.selector) spec.selector = s.selector;
  if (s.externalIPs.length > 0) spec.externalIPs = s.externalIPs;
  if (externallyAccessible) spec.externalTrafficPolicy = s.externalTrafficPolicy;
  if (s.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: s.affinityTimeoutSeconds } };
  }
  if (s.allocateLoadBalancerNodePorts !== undefined) {
    spec.allocateLoadBalancerNodePorts = s.allocateLoadBalancerNodePorts;
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace, labels: s.labels },
    spec,
    ...(s.loadBalancerIP
      ? { status: { loadBalancer: { ingress: [{ ip: s.loadBalancerIP }] } } }
      : {}),
  };
}

function sliceObject(e: EndpointSlice): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: e.name, namespace: e.namespace, labels: e.labels },
    addressType: e.addressType,
    ports: e.ports.map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      protocol: p.protocol,
      port: p.port,
    })),
    endpoints: e.endpoints.map((ep) => {
      const [namespace, name] = (ep.targetRef ?? '').split('/');
      return {
        addresses: ep.addresses,
        conditions: ep.conditions,
        ...(ep.nodeName !== undefined ? { nodeName: ep.nodeName } : {}),
        ...(ep.targetRef !== undefined ? { targetRef: { kind: 'Pod', namespace, name } } : {}),
      };
    }),
  };
}

function accelerationObjects(state: ClusterState): object[] {
  const namespaces = [...state.namespaces.values()].map((ns) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: ns.name,
      labels: ns.labels,
      ...(ns.annotations ? { annotations: ns.annotations } : {}),
    },
  }));
  const pods = [...state.pods.values()]
    .filter((p) => !p.virtual && p.ip !== '')
    .map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, uid: p.uid, labels: p.labels },
      spec: {
        nodeName: p.nodeName,
        containers: p.containers.map((c) => ({
          name: c.name,
          image: c.image,
          ...(c.ports.length > 0 ? { ports: c.ports } : {}),
        })),
      },
      status: { podIP: p.ip },
    }));
  const policies = [...state.policies.values()]
    .filter((p) => p.kind === 'TrafficOptimization' || p.kind === 'CiliumNetworkPolicy')
    .map((p) => ({
      apiVersion: p.kind === 'TrafficOptimization' ? 'sluice.io/v1alpha1' : 'cilium.io/v2',
      kind: p.kind,
      metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
      ...(p.spec !== undefined ? { spec: p.spec } : {}),
      ...(p.specs !== undefined ? { specs: p.specs } : {}),
    }));
  return [...namespaces, ...pods, ...policies];
}

/**
 * Writes the cluster for the agents and returns the digest they report once they programmed it.
 * Only files whose content changed are written (each atomically: a reader never sees half of
 * one); files of the cluster no longer needed (an emptied shard) are removed.
 */
export function writeClusterManifest(stateDir: string, state: ClusterState): string {
  const dir = manifestsDir(stateDir);
  mkdirSync(dir, { recursive: true });
  const files = clusterManifestFiles(state);
  const wanted = new Set(files.map((f) => f.name));
  for (const name of readdirSync(dir)) {
    if (isClusterFile(name) && !wanted.has(name)) rmSync(join(dir, name), { force: true });
  }
  for (const f of files) {
    const path = join(dir, f.name);
    if (existsSync(path) && readFileSync(path, 'utf8') === f.content) continue;
    // A dot file is never read as a manifest.
    writeFileSync(join(dir, `.${f.name}.tmp`), f.content);
    renameSync(join(dir, `.${f.name}.tmp`), path);
  }
  return manifestsDigest(files);
}

/** The digest of the cluster files as written now (what an agent reports once it read them). */
export function writtenClusterDigest(stateDir: string): string {
  const dir = manifestsDir(stateDir);
  const names = readdirSync(dir).filter(isClusterFile);
  return manifestsDigest(
    names.map((name) => ({ name, content: readFileSync(join(dir, name), 'utf8') })),
  );
}

const isClusterFile = (name: string): boolean =>
  name === BASE_FILE || (name.startsWith(SHARD_PREFIX) && name.endsWith('.json'));

/**
 * Changes to the agents' generated config, merged into it field by field (arrays replaced).
 * `SOCKET_LB_OFF` turns socket LB off and balances ClusterIP traffic per packet at the pods'
 * veths instead.
 */
export type AgentConfigOverrides = AgentConfigInput;

export const SOCKET_LB_OFF: AgentConfigOverrides = {
  socketLB: { enabled: false },
  perPacketLB: { podInterfaces: ['p*'] },
};

/**
 * Records the overrides for every agent this lab starts (restarts included); the file goes
 * with the lab (resetAgentFiles).
 */
export function setAgentOverrides(stateDir: string, overrides: AgentConfigOverrides): void {
  mkdirSync(agentsDir(stateDir), { recursive: true });
  writeFileSync(overridesFile(stateDir), JSON.stringify(overrides));
}

function agentOverrides(stateDir: string): AgentConfigOverrides {
  const path = overridesFile(stateDir);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as AgentConfigOverrides) : {};
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(value) ? merge(prev, value) : value;
  }
  return out;
}

function agentConfig(lab: LabTopology, node: NodeRecord, overrides: AgentConfigOverrides): string {
  const { min, max } = lab.addressing.nodePortRange;
  const base: AgentConfigInput = {
    socketLB: { cgroupPath: node.cgroup },
    perPacketLB: { interfaces: ['fab0'], clusterCIDR: lab.addressing.podCIDRBase },
    nodePortRange: `${min}-${max}`,
    pinRoot: agentPinRoot(lab, node.name),
    health: { address: `127.0.0.1:${AGENT_HEALTH_PORT}` },
  };
  const config = merge(base, overrides);
  return `# Written by the lab for the sluice agent of this node (docs/agent.md).\n${stringify(config)}`;
}

const isAgent = (p: ProcessRecord): boolean => p.argv.includes('agent') && p.argv.includes(MAIN);

/** The node's running agent, if any. */
export function liveAgent(lab: LabTopology, node: string): ProcessRecord | undefined {
  return lab.liveProcesses(`node/${node}`).find(isAgent);
}

/**
 * Starts the node's agent. `ip netns exec` gives it a private /sys without bpffs or cgroup2, so
 * it first re-enters the mount namespace of the process starting it (nsenter --mount), keeping
 * the node's network namespace and cgroup: pins are then where `lab down` and `service list`
 * find them, and the cgroup path is real.
 */
export function startAgent(lab: LabTopology, stateDir: string, node: NodeRecord): ProcessRecord {
  mkdirSync(agentsDir(stateDir), { recursive: true });
  const config = join(agentsDir(stateDir), `${node.name}.yaml`);
  writeFileSync(config, agentConfig(lab, node, agentOverrides(stateDir)));
  const argv = [
    'nsenter',
    `--mount=/proc/${process.pid}/ns/mnt`,
    '--',
    process.execPath,
    ...AGENT_V8_FLAGS,
    MAIN,
    'agent',
    '--node',
    node.name,
    '--source',
    `manifests:${manifestsDir(stateDir)}`,
    '--config',
    config,
  ];
  return lab.startProcess({ node: node.name }, argv, {
    log: agentLog(stateDir, node.name),
  });
}

export interface AgentHealth {
  ready: boolean;
  programmed: { generation: number; digest: string; ops: Record<string, number> } | null;
  lastError: string | null;
  [key: string]: unknown;
}

/** The agent's /healthz, asked from inside the node (the endpoint listens on its loopback). */
export async function agentHealth(lab: LabTopology, node: string): Promise<AgentHealth | null> {
  const r = await lab.execInNode(
    node,
    ['curl', '-sf', '--max-time', '1', `http://127.0.0.1:${AGENT_HEALTH_PORT}/healthz`],
    { allowFailure: true, timeoutMs: 3000 },
  );
  if (r.code !== 0) return null;
  try {
    return JSON.parse(r.stdout) as AgentHealth;
  } catch {
    return null;
  }
}

/** Waits until the node's agent reports the digest programmed; fails early if it died. */
export async function waitProgrammed(
  lab: LabTopology,
  node: string,
  digest: string,
  log: string,
  timeoutMs = PROGRAMMED_TIMEOUT_MS,
): Promise<AgentHealth> {
  const deadline = Date.now() + timeoutMs;
  let last: AgentHealth | null = null;
  for (;;) {
    last = await agentHealth(lab, node);
    if (last?.programmed?.digest === digest) return last;
    const dead = liveAgent(lab, node) === undefined;
    if (dead || Date.now() > deadline) {
      const why = dead ? 'exited' : `did not program the change within ${timeoutMs} ms`;
      throw new LabError(
        `the sluice agent of ${node} ${why}${last?.lastError ? ` (last error: ${last.lastError})` : ''}; its log ends:\n${tail(log)}`,
      );
    }
    await sleep(20);
  }
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Writes the cluster for the agents, starts those not running, waits until all programmed it. */
export async function syncAgents(
  lab: LabTopology,
  stateDir: string,
  state: ClusterState,
): Promise<void> {
  const digest = writeClusterManifest(stateDir, state);
  await Promise.all(
    lab.nodes().map(async (node) => {
      const running = liveAgent(lab, node.name) ?? startAgent(lab, stateDir, node);
      await waitProgrammed(lab, node.name, digest, running.log ?? agentLog(stateDir, node.name));
    }),
  );
}
