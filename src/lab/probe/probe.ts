/**
 * `sluice lab probe FROM TO`: resolves who asks (a pod, or the external client) and what is asked
 * (a pod, a service's ClusterIP, a node's NodePort, an address), runs the probe client inside
 * the asker's namespace and cgroup, and summarises the attempts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterState, ObjectKey } from '../../model/index.js';
import { objectKey } from '../../model/index.js';
import type { LabTopology, Target } from '../topology/index.js';
import type { ProbeAttempt, ProbeProto, ProbeRequest } from './protocol.js';

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'client.js');

/** A probe that cannot run as asked (exit status 2). */
export class ProbeUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeUsageError';
  }
}

export interface ProbeOptions {
  port?: number;
  proto?: ProbeProto;
  request?: string;
  count: number;
  timeoutMs: number;
  sourcePort?: number;
}

export interface ProbeResult {
  from: string;
  to: string;
  request: ProbeRequest;
  attempts: ProbeAttempt[];
  /** Attempts per answering backend (pod name), for --count. */
  backends: Record<string, number>;
  ok: boolean;
}

function parseKey(text: string, what: string): ObjectKey {
  const parts = text.split('/');
  if (parts.length === 1 && parts[0]) return objectKey('default', parts[0]);
  if (parts.length === 2 && parts[0] && parts[1]) return objectKey(parts[0], parts[1]);
  throw new ProbeUsageError(`${what} '${text}' is not NAMESPACE/NAME`);
}

function resolveFrom(state: ClusterState, lab: LabTopology, from: string): Target {
  if (from === 'external') return 'external';
  const key = parseKey(from, 'FROM');
  const pod = state.pods.get(key);
  if (!pod) throw new ProbeUsageError(`FROM: no pod ${key}`);
  if (pod.virtual || !lab.hasPod(key))
    throw new ProbeUsageError(`FROM: pod ${key} is virtual (it has no namespace)`);
  return { pod: key };
}

function guessProto(portName: string | undefined, port: number): ProbeProto {
  if (portName?.startsWith('http')) return 'http';
  if (portName === 'redis' || port === 6379) return 'redis';
  return 'tcp';
}

/** The address, port and default protocol TO names. */
function resolveTo(
  state: ClusterState,
  to: string,
  options: ProbeOptions,
): { ip: string; port: number; proto: ProbeProto } {
  const pick = (ports: { name?: string; port: number; protocol: string }[], what: string) => {
    const match =
      options.port === undefined ? ports[0] : ports.find((p) => p.port === options.port);
    if (!match) {
      throw new ProbeUsageError(
        `${what} has no port ${options.port ?? ''} (ports: ${ports.map((p) => p.port).join(', ') || 'none'})`,
      );
    }
    const proto =
      options.proto ?? (match.protocol === 'UDP' ? 'udp' : guessProto(match.name, match.port));
    return { port: match.port, proto };
  };
  if (to.startsWith('svc/')) {
    const key = parseKey(to.slice(4), 'TO');
    const svc = state.services.get(key);
    if (!svc) throw new ProbeUsageError(`TO: no service ${key}`);
    if (svc.clusterIP === 'None')
      throw new ProbeUsageError(`TO: service ${key} is headless: it has no ClusterIP`);
    return {
      ip: svc.clusterIP,
      ...pick(
        svc.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
        `service ${key}`,
      ),
    };
  }
  if (to.startsWith('node/')) {
    const node = state.nodes.get(to.slice(5));
    if (!node) throw new ProbeUsageError(`TO: no node ${to.slice(5)}`);
    const nodePorts = [...state.services.values()].flatMap((s) =>
      s.ports
        .filter((p) => p.nodePort)
        .map((p) => ({ name: p.name, port: p.nodePort ?? 0, protocol: p.protocol })),
    );
    return { ip: node.ip, ...pick(nodePorts, `node ${node.name}`) };
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(to)) {
    if (options.port === undefined) throw new ProbeUsageError(`TO: ${to} needs --port`);
    return { ip: to, port: options.port, proto: options.proto ?? 'tcp' };
  }
  const key = parseKey(to, 'TO');
  const pod = state.pods.get(key);
  if (!pod)
    throw new ProbeUsageError(
      `TO: no pod ${key} (use svc/NS/NAME for a service, node/NAME for a node)`,
    );
  const ports = pod.containers.flatMap((c) =>
    c.ports.map((p) => ({ name: p.name, port: p.containerPort, protocol: p.protocol })),
  );
  return { ip: pod.ip, ...pick(ports, `pod ${key}`) };
}

export async function runProbe(
  state: ClusterState,
  lab: LabTopology,
  from: string,
  to: string,
  options: ProbeOptions,
): Promise<ProbeResult> {
  const target = resolveFrom(state, lab, from);
  const dest = resolveTo(state, to, options);
  const request: ProbeRequest = {
    ip: dest.ip,
    port: dest.port,
    proto: dest.proto,
    count: options.count,
    timeoutMs: options.timeoutMs,
    ...(options.request !== undefined ? { request: options.request } : {}),
    ...(options.sourcePort !== undefined ? { sourcePort: options.sourcePort } : {}),
  };
  const run = await lab.exec(target, [process.execPath, CLIENT, JSON.stringify(request)], {
    timeoutMs: options.count * options.timeoutMs + 10_000,
  });
  const { attempts } = JSON.parse(run.stdout) as { attempts: ProbeAttempt[] };
  const backends: Record<string, number> = {};
  for (const a of attempts)
    if (a.ok && a.backend) backends[a.backend] = (backends[a.backend] ?? 0) + 1;
  return { from, to, request, attempts, backends, ok: attempts.every((a) => a.ok) };
}

export function formatProbe(result: ProbeResult): string {
  const { request } = result;
  const dest = `${request.ip}:${request.port}/${request.proto}`;
  const lines = result.attempts.map((a, i) => {
    const n = result.attempts.length > 1 ? `#${i + 1} ` : '';
    const ms = (a.latencyUs / 1000).toFixed(2);
    return a.ok
      ? `${n}${result.from} -> ${result.to} (${dest}): ok${a.backend ? `, answered by ${a.backend}` : a.reply ? `: ${a.reply}` : ''} in ${ms} ms`
      : `${n}${result.from} -> ${result.to} (${dest}): FAILED ${a.code ?? ''} ${a.error ?? ''} after ${ms} ms`;
  });
  if (result.attempts.length > 1) {
    const ok = result.attempts.filter((a) => a.ok).length;
    const spread = Object.entries(result.backends)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name}=${n}`)
      .join(' ');
    lines.push(`${ok}/${result.attempts.length} succeeded${spread ? `; backends: ${spread}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
