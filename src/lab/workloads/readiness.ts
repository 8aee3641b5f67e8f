/**
 * Waiting until a pod serves: its sockets are listening inside the pod's network namespace.
 * Read from /proc/<pid>/net/{tcp,udp}[6] of one of the pod's processes (that file shows the
 * process's network namespace), else from `cat /proc/net/...` run inside the pod. A workload
 * that exits while we wait fails the wait with the end of its log.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Protocol } from '../../model/types.js';
import { LabError } from '../topology/errors.js';
import type { LabTopology } from '../topology/topology.js';

export interface PortRef {
  port: number;
  protocol: Protocol;
}

const TCP_LISTEN = '0A';
const PROC_NET_FILES = { TCP: ['tcp', 'tcp6'], UDP: ['udp', 'udp6'] } as const;

/**
 * Local ports of the sockets in a /proc/net/{tcp,udp}[6] table that serve: TCP in LISTEN,
 * UDP bound with no remote peer.
 */
export function servingPorts(table: string, protocol: 'TCP' | 'UDP'): Set<number> {
  const ports = new Set<number>();
  for (const line of table.split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || state === undefined) continue;
    const port = parseInt(local.split(':')[1] ?? '', 16);
    const unconnected = /^0+:0000$/.test(remote);
    if (protocol === 'TCP' ? state === TCP_LISTEN : unconnected) ports.add(port);
  }
  return ports;
}

async function readTables(
  lab: LabTopology,
  podKey: string,
  protocol: 'TCP' | 'UDP',
): Promise<string> {
  const files = PROC_NET_FILES[protocol];
  const proc = lab.liveProcesses(podKey)[0];
  if (proc !== undefined) {
    try {
      return files.map((f) => readFileSync(`/proc/${proc.pid}/net/${f}`, 'utf8')).join('\n');
    } catch {
      /* exited just now: ask inside the namespace */
    }
  }
  const { stdout } = await lab.execInPod(podKey, ['cat', ...files.map((f) => `/proc/net/${f}`)]);
  return stdout;
}

/** The ports among `ports` that nothing serves yet in the pod. */
export async function notListening(
  lab: LabTopology,
  podKey: string,
  ports: readonly PortRef[],
): Promise<PortRef[]> {
  const serving = new Map<string, Set<number>>();
  for (const protocol of ['TCP', 'UDP'] as const) {
    if (ports.some((p) => p.protocol === protocol)) {
      serving.set(protocol, servingPorts(await readTables(lab, podKey, protocol), protocol));
    }
  }
  return ports.filter((p) => !serving.get(p.protocol)?.has(p.port));
}

export interface WaitOptions {
  /** Default 10 s. */
  timeoutMs?: number;
}

/** Resolves once every port is served in the pod; throws on timeout or when the workload died. */
export async function waitListening(
  lab: LabTopology,
  podKey: string,
  ports: readonly PortRef[],
  options: WaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const recorded = lab.processes().filter((p) => p.owner === podKey);
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const missing = await notListening(lab, podKey, ports);
    if (missing.length === 0) return;
    const what = missing.map((p) => `${p.protocol.toLowerCase()}/${p.port}`).join(', ');
    if (recorded.length > 0 && lab.liveProcesses(podKey).length === 0) {
      const logs = recorded.map((p) => (p.log ? tail(p.log) : '')).join('\n');
      throw new LabError(`pod ${podKey}: workload exited before serving ${what}\n${logs}`.trim());
    }
    if (Date.now() > deadline) throw new LabError(`pod ${podKey}: nothing serves ${what} in time`);
    await sleep(delay);
  }
}

function tail(path: string, lines = 10): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
