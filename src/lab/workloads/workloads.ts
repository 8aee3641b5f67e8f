/**
 * Pod workloads: what runs in a lab pod, started detached inside the pod's network namespace
 * and cgroup, recorded in the lab's state file. Per container:
 *
 *   - the container has a command (manifest command+args or the sluice.io/command annotation):
 *     it runs as given;
 *   - the image is redis (`redis`, `redis:7`, `docker.io/library/redis`, ...): Debian's
 *     redis-server on the container's first TCP port (6379 without one), no persistence;
 *   - otherwise native/.output/echo_server --name <pod name> with every declared port: TCP
 *     ports whose name starts with `http` as HTTP, other TCP ports as TCP echo, UDP as UDP echo
 *     (SCTP ports are not served). A container without ports runs nothing.
 *
 * Virtual pods run nothing. Every process gets POD_NAME, POD_NAMESPACE, POD_IP and NODE_NAME in
 * its environment, like the downward API, and logs to <stateDir>/logs/<ns>_<pod>_<container>.log.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Container, Pod, Protocol } from '../../model/types.js';
import { LabError } from '../topology/errors.js';
import { logDir } from '../topology/state-file.js';
import type { LabTopology } from '../topology/topology.js';
import type { ProcessRecord } from '../topology/state-file.js';

export const ECHO_SERVER_ENV = 'SLUICE_ECHO_SERVER';
export const REDIS_DEFAULT_PORT = 6379;

export interface WorkloadSpec {
  container: string;
  kind: 'echo' | 'redis' | 'command';
  argv: string[];
  /** The ports the process serves, for waitListening. */
  ports: { port: number; protocol: Protocol }[];
}

/** native/.output/echo_server of this checkout, or $SLUICE_ECHO_SERVER. */
export function echoServerPath(): string {
  const fromEnv = process.env[ECHO_SERVER_ENV];
  if (fromEnv) return fromEnv;
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  return join(root, 'native/.output/echo_server');
}

/** The image's repository name (last path segment, no tag or digest) starts with `redis`. */
export function isRedisImage(image: string): boolean {
  const last = image.split('/').pop() ?? '';
  const repo = last.split('@')[0]?.split(':')[0] ?? '';
  return repo.startsWith('redis');
}

/** What runs for each container of the pod (pure). */
export function planWorkload(pod: Pod, echoServer = echoServerPath()): WorkloadSpec[] {
  if (pod.virtual) return [];
  return pod.containers.flatMap((c): WorkloadSpec[] => {
    if (c.command !== undefined && c.command.length > 0) {
      return [{ container: c.name, kind: 'command', argv: [...c.command], ports: servedPorts(c) }];
    }
    if (isRedisImage(c.image)) {
      const port = c.ports.find((p) => p.protocol === 'TCP')?.containerPort ?? REDIS_DEFAULT_PORT;
      return [
        {
          container: c.name,
          kind: 'redis',
          argv: [
            'redis-server',
            '--port',
            String(port),
            '--bind',
            '0.0.0.0',
            '--protected-mode',
            'no',
            '--save',
            '',
            '--appendonly',
            'no',
            '--daemonize',
            'no',
          ],
          ports: [{ port, protocol: 'TCP' }],
        },
      ];
    }
    const ports = servedPorts(c);
    if (ports.length === 0) return [];
    const args = c.ports.flatMap((p) => {
      if (p.protocol === 'UDP') return ['--udp', String(p.containerPort)];
      if (p.protocol !== 'TCP') return [];
      const http = (p.name ?? '').startsWith('http');
      return [http ? '--http' : '--tcp', String(p.containerPort)];
    });
    return [
      { container: c.name, kind: 'echo', argv: [echoServer, '--name', pod.name, ...args], ports },
    ];
  });
}

function servedPorts(c: Container): { port: number; protocol: Protocol }[] {
  return c.ports
    .filter((p) => p.protocol === 'TCP' || p.protocol === 'UDP')
    .map((p) => ({ port: p.containerPort, protocol: p.protocol }));
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Starts the pod's processes (see the module comment); returns their records. */
export function startWorkload(lab: LabTopology, pod: Pod): ProcessRecord[] {
  const key = `${pod.namespace}/${pod.name}`;
  const specs = planWorkload(pod);
  for (const spec of specs) {
    if (spec.kind === 'echo' && !existsSync(spec.argv[0] as string)) {
      throw new LabError(`${spec.argv[0]} is not built: run make -C native`);
    }
    if (spec.kind === 'redis' && !onPath('redis-server')) {
      throw new LabError(`pod ${key} needs redis-server: apt-get install redis-server`);
    }
  }
  const record = lab.pod(key);
  const env = {
    POD_NAME: pod.name,
    POD_NAMESPACE: pod.namespace,
    POD_IP: record.ip,
    NODE_NAME: record.node,
  };
  return specs.map((spec) =>
    lab.startProcess({ pod: key }, spec.argv, {
      env,
      container: spec.container,
      log: join(logDir(lab.stateDir), `${pod.namespace}_${pod.name}_${spec.container}.log`),
    }),
  );
}

/** Stops the pod's processes: SIGTERM, SIGKILL after `graceMs`. Returns how many ran. */
export function stopWorkload(lab: LabTopology, podKey: string, graceMs = 2000): Promise<number> {
  return lab.stopProcesses(podKey, graceMs);
}
