/**
 * The agent's configuration: YAML, validated with zod before anything is touched, with every
 * field defaulted (docs/agent.md documents each one). A malformed file is refused with one line
 * per problem naming the field, e.g. `perPacketLB.interfaces[0]: expected string`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { AgentError } from './errors.js';
import { parseCidr } from '../model/ip.js';
import { MAGLEV_DEFAULT_TABLE_SIZE, tableSizeProblem } from '../model/maglev.js';

const NODE_PORT_RANGE = /^(\d{1,5})-(\d{1,5})$/;

const port = z.number().int().min(1).max(65535);
const seconds = z
  .number()
  .int()
  .min(1)
  .max(7 * 24 * 3600);

export const configSchema = z
  .object({
    /** Socket-level LB: ClusterIP translated once per connection in the pods' cgroup. */
    socketLB: z
      .object({
        enabled: z.boolean().default(true),
        /** The cgroup whose processes (the node's pods) get socket LB. Required when enabled. */
        cgroupPath: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** Per-packet LB at TC: NodePort, LoadBalancer, externalIPs, ClusterIP bypassing sockets. */
    perPacketLB: z
      .object({
        enabled: z.boolean().default(true),
        interfaces: z.array(z.string().min(1).max(15)).min(1).default(['fab0']),
        /**
         * Host ends of the pods' veths, by name or glob (`*`, `?`), e.g. `p*`: they get
         * lb_tc_ingress, so pod traffic that bypassed the socket hooks is balanced per packet.
         * Re-scanned on every reconcile (and every few seconds), so new veths are picked up.
         */
        podInterfaces: z
          .array(
            z
              .string()
              .regex(
                /^[A-Za-z0-9_.:@*?-]{1,15}$/,
                'expected an interface name or glob of at most 15 characters, e.g. p*',
              ),
          )
          .default([]),
        /** The pods' CIDR: ClusterIP flows from outside it to another node are SNATed; a
         * Service with a frontend inside it is skipped. */
        clusterCIDR: z
          .string()
          .regex(/^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/, 'expected an IPv4 CIDR, e.g. 10.244.0.0/16')
          .optional(),
        /** Source ports for SNAT to the node address, MIN-MAX. */
        snatPorts: z
          .string()
          .regex(NODE_PORT_RANGE, 'expected MIN-MAX, e.g. 61000-65535')
          .default('61000-65535'),
        /** Attach TC in the machine's initial network namespace (a real node). */
        allowInitialNetns: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    nodePortRange: z
      .string()
      .regex(NODE_PORT_RANGE, 'expected MIN-MAX, e.g. 30000-32767')
      .refine((text) => {
        const [, min, max] = NODE_PORT_RANGE.exec(text) ?? [];
        return Number(min) >= 1 && Number(max) <= 65535 && Number(min) <= Number(max);
      }, 'expected 1 <= MIN <= MAX <= 65535')
      .default('30000-32767'),
    externalBackendSelection: z.enum(['random', 'maglev']).default('random'),
    maps: z
      .object({
        /** max_entries overrides by map name (lb4_services, lb_slots, ct4, ...). */
        maxEntries: z
          .record(
            z.string().min(1),
            z
              .number()
              .int()
              .min(1)
              .max(1 << 28),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
    conntrack: z
      .object({
        /** Seconds an idle flow is kept, per protocol and TCP state (Cilium's defaults). */
        timeouts: z
          .object({
            tcpSyn: seconds.default(60),
            tcpEstablished: seconds.default(21600),
            tcpFin: seconds.default(10),
            tcpClose: seconds.default(10),
            udp: seconds.default(60),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** bpffs directory for maps and links; default /sys/fs/bpf/sluice/<node>. */
    pinRoot: z.string().startsWith('/').optional(),
    health: z
      .object({
        /** host:port of /healthz and /readyz. */
        address: z
          .string()
          .regex(/^[0-9.]+:\d{1,5}$/, 'expected IPv4:PORT, e.g. 127.0.0.1:10256')
          .default('127.0.0.1:10256'),
      })
      .strict()
      .prefault({}),
    /**
     * The XDP fast path (bpf/lb_xdp.c, docs/xdp.md) in front of TC on the uplinks: external
     * traffic to remote backends leaves again from XDP. Falls back to TC alone, with one log
     * line, where XDP cannot attach in the mode asked for.
     */
    xdp: z
      .object({
        enabled: z.boolean().default(false),
        /** native: in the driver; generic: after the skb is built (any device, slower). */
        mode: z.enum(['native', 'generic']).default('native'),
        /** Default: perPacketLB.interfaces. Each must be one of them (TC finishes behind XDP). */
        interfaces: z.array(z.string().min(1).max(15)).min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** How external flows reach backends on other nodes (bpf/include/dsr.h). */
    lb: z
      .object({
        /** snat: replies return through this node; dsr: the backend's node answers the client
         * directly; hybrid: dsr for TCP, snat for UDP. */
        mode: z.enum(['snat', 'dsr', 'hybrid']).default('snat'),
      })
      .strict()
      .prefault({}),
    /** Maglev consistent hashing for external traffic (externalBackendSelection: maglev). */
    maglev: z
      .object({
        /** Slots per service table: a prime, 251..131071 (docs/maglev.md). Load-time. */
        tableSize: z
          .number()
          .int()
          .superRefine((size, ctx) => {
            const problem = tableSizeProblem(size);
            if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
          })
          .default(MAGLEV_DEFAULT_TABLE_SIZE),
      })
      .strict()
      .prefault({}),
    /**
     * Socket acceleration (bpf/sockops.c, docs/socket-acceleration.md): TCP between two pods of
     * this node whose namespaces carry sluice.io/accelerate: "true" skips the stack (sockmap
     * redirect), and TrafficOptimizations tune the pods' connections. Attaches to
     * socketLB.cgroupPath. Off by default: redirected bytes bypass netfilter, TC and capture.
     */
    socketAcceleration: z
      .object({ enabled: z.boolean().default(false) })
      .strict()
      .prefault({}),
  })
  .strict();

export type AgentConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

export interface AgentConfig extends Omit<
  Parsed,
  'nodePortRange' | 'pinRoot' | 'health' | 'perPacketLB' | 'xdp'
> {
  nodePortRange: { min: number; max: number };
  perPacketLB: Omit<Parsed['perPacketLB'], 'snatPorts'> & {
    snatPorts: { min: number; max: number };
  };
  pinRoot: string;
  health: { host: string; port: number };
  xdp: Omit<Parsed['xdp'], 'interfaces'> & { interfaces: string[] };
}

export const PIN_BASE = '/sys/fs/bpf/sluice';

/** Validates a parsed config object; throws AgentError naming every bad field. */
export function resolveConfig(input: unknown, nodeName: string, origin = 'config'): AgentConfig {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${origin}: ${fieldPath(i.path)}: ${i.message}`);
    throw new AgentError('AGENT_CONFIG', lines.join('\n'));
  }
  const c = result.data;
  const problems: string[] = [];
  if (c.socketLB.enabled && c.socketLB.cgroupPath === undefined) {
    problems.push('socketLB.cgroupPath: required when socketLB.enabled is true');
  }
  if (c.socketAcceleration.enabled && c.socketLB.cgroupPath === undefined) {
    problems.push(
      "socketAcceleration.enabled: needs socketLB.cgroupPath (the node's cgroup, where sock_ops attaches)",
    );
  }
  if (!c.perPacketLB.enabled && c.perPacketLB.podInterfaces.length > 0) {
    problems.push('perPacketLB.podInterfaces: set, but perPacketLB.enabled is false');
  }
  if (c.externalBackendSelection === 'maglev' && !c.perPacketLB.enabled) {
    problems.push(
      'externalBackendSelection: maglev selects backends in the per-packet datapath; it needs perPacketLB.enabled',
    );
  }
  const xdpInterfaces = c.xdp.interfaces ?? c.perPacketLB.interfaces;
  if (c.xdp.enabled && !c.perPacketLB.enabled) {
    problems.push('xdp.enabled: requires perPacketLB.enabled (TC finishes what XDP hands off)');
  }
  for (const name of xdpInterfaces) {
    if (c.xdp.enabled && !c.perPacketLB.interfaces.includes(name)) {
      problems.push(`xdp.interfaces: ${name} is not one of perPacketLB.interfaces`);
    }
  }
  const [, min = '0', max = '0'] = NODE_PORT_RANGE.exec(c.nodePortRange) ?? [];
  const [, snatMin = '0', snatMax = '0'] = NODE_PORT_RANGE.exec(c.perPacketLB.snatPorts) ?? [];
  if (Number(snatMin) < 1 || Number(snatMax) > 65535 || Number(snatMin) > Number(snatMax)) {
    problems.push('perPacketLB.snatPorts: expected 1 <= MIN <= MAX <= 65535');
  }
  const clusterCIDR = c.perPacketLB.clusterCIDR;
  if (clusterCIDR !== undefined && parseCidr(clusterCIDR) === undefined) {
    problems.push(
      `perPacketLB.clusterCIDR: ${clusterCIDR} is not an IPv4 CIDR with no host bits set (e.g. 10.244.0.0/16)`,
    );
  }
  const [host = '', portText = ''] = c.health.address.split(':');
  if (!port.safeParse(Number(portText)).success) {
    problems.push(`health.address: port ${portText} is not in 1..65535`);
  }
  if (problems.length > 0) {
    throw new AgentError('AGENT_CONFIG', problems.map((p) => `${origin}: ${p}`).join('\n'));
  }
  return {
    ...c,
    nodePortRange: { min: Number(min), max: Number(max) },
    perPacketLB: { ...c.perPacketLB, snatPorts: { min: Number(snatMin), max: Number(snatMax) } },
    pinRoot: c.pinRoot ?? join(PIN_BASE, nodeName),
    health: { host, port: Number(portText) },
    xdp: { ...c.xdp, interfaces: xdpInterfaces },
  };
}

/** Reads and validates a YAML config file (none: every default). */
export function loadConfig(file: string | undefined, nodeName: string): AgentConfig {
  if (file === undefined) return resolveConfig({}, nodeName);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AgentError('AGENT_CONFIG', `${file}: cannot read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new AgentError('AGENT_CONFIG', `${file}: not YAML: ${(error as Error).message}`);
  }
  return resolveConfig(parsed, nodeName, file);
}

function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}
