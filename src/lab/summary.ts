/** What `sluice lab up` prints: the cluster at a glance and probes to paste. */
import { existsSync } from 'node:fs';
import type { ClusterState } from '../model/index.js';
import { formatGet } from './get.js';
import type { Lab } from './lab.js';

/** How the user runs sluice here: the checkout's wrapper when it is in the current directory. */
function invocation(): string {
  return existsSync('sluice') && existsSync('dist/cli/main.js') ? './sluice' : 'sluice';
}

/** Probes that show the cluster working: through a ClusterIP, a NodePort, and to redis. */
export function suggestedProbes(state: ClusterState, cli = invocation()): string[] {
  const client = [...state.pods.values()].find(
    (p) => !p.virtual && p.containers.every((c) => c.ports.length === 0),
  );
  const from = client ? `${client.namespace}/${client.name}` : undefined;
  const services = [...state.services.values()].filter((s) => s.clusterIP !== 'None');
  const probes: string[] = [];
  // The HTTP service users can also reach from outside (a NodePort) shows the most.
  const httpServices = services.filter((s) => s.ports.some((p) => p.name.startsWith('http')));
  const http = httpServices.find((s) => s.ports.some((p) => p.nodePort)) ?? httpServices[0];
  if (from && http)
    probes.push(`${cli} lab probe ${from} svc/${http.namespace}/${http.name} --count 6`);
  const nodePort = services.flatMap((s) =>
    s.ports.filter((p) => p.nodePort).map((p) => p.nodePort),
  )[0];
  const node = [...state.nodes.values()].at(-1);
  if (nodePort && node)
    probes.push(`${cli} lab probe external node/${node.name} --port ${nodePort}`);
  const redis = services.find((s) => s.ports.some((p) => p.port === 6379 || p.name === 'redis'));
  if (from && redis)
    probes.push(
      `${cli} lab probe ${from} svc/${redis.namespace}/${redis.name} --request "SET greeting hello"`,
    );
  return probes;
}

export function formatSummary(lab: Lab, seconds: number): string {
  const { state } = lab;
  const out = [
    `lab up in ${seconds.toFixed(1)} s: ${state.nodes.size} nodes, ${state.pods.size} pods, ${state.services.size} services, proxy ${lab.config.proxy}`,
    '',
    formatGet(state, 'nodes', { output: 'table' }),
    formatGet(state, 'pods', { output: 'table' }),
    formatGet(state, 'services', { output: 'table' }),
  ];
  const probes = suggestedProbes(state);
  if (probes.length) out.push('Try:', ...probes.map((p) => `  ${p}`), '');
  out.push(`Remove everything with: ${invocation()} lab down`, '');
  return out.join('\n');
}
