/**
 * Socket acceleration and per-connection TCP tuning, as the model sees them (no I/O):
 *
 * - A Namespace opts its pods in to socket acceleration with the annotation
 *   `sluice.io/accelerate: "true"`.
 * - A TrafficOptimization (sluice.io/v1alpha1) selects pods of its namespace by labels (and
 *   optionally ports) and sets TCP options on their connections: congestion control, initial
 *   congestion window, TCP Fast Open, no slow start after idle.
 * - A CiliumNetworkPolicy rule's `tcp:` block (enableBBR, zeroRTTSessionResumption,
 *   noSlowStartAfterIdle) is read as the same thing, for the rule's endpointSelector.
 *
 * `podTuning` resolves, for one pod, which settings apply on which ports. The agent turns that
 * into map entries (per-socket options) and sysctls of the pod's network namespace (the
 * settings with no per-socket option).
 */
import { z } from 'zod';
import type { CiliumEndpointSelector } from './cilium.js';
import { joinPath } from './paths.js';
import type { LabelSelector } from './selectors.js';
import { checkLabelSelector, matchesSelector } from './selectors.js';
import type { ClusterState, Namespace, Pod, Policy } from './types.js';

export const ACCELERATE_ANNOTATION = 'sluice.io/accelerate';
export const TRAFFIC_OPTIMIZATION_API_VERSION = 'sluice.io/v1alpha1';

/** The Linux limit on a congestion control name (TCP_CA_NAME_MAX - 1). */
const CA_NAME_MAX = 15;

const selector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const tcpSettings = z
  .strictObject({
    /** A name from /proc/sys/net/ipv4/tcp_available_congestion_control; checked at apply. */
    congestionControl: z
      .string()
      .regex(/^[a-z0-9_]+$/, 'must be a congestion control name such as bbr or cubic')
      .max(CA_NAME_MAX, `must be at most ${CA_NAME_MAX} characters`)
      .optional(),
    /** Initial congestion window, in segments (TCP_BPF_IW). */
    initialCongestionWindow: z.number().int().min(1).max(1024).optional(),
    /** TCP Fast Open on the pod's sockets (net.ipv4.tcp_fastopen of its namespace). */
    fastOpen: z.boolean().optional(),
    /** net.ipv4.tcp_slow_start_after_idle=0 in the pod's namespace. */
    noSlowStartAfterIdle: z.boolean().optional(),
  })
  .refine(
    (t) => Object.values(t).some((v) => v !== undefined && v !== false),
    'sets nothing: give congestionControl, initialCongestionWindow, fastOpen or noSlowStartAfterIdle',
  );

export const trafficOptimizationSchema = z.looseObject({
  apiVersion: z.literal(TRAFFIC_OPTIMIZATION_API_VERSION, {
    error: `must be ${TRAFFIC_OPTIMIZATION_API_VERSION}`,
  }),
  kind: z.literal('TrafficOptimization'),
  metadata: z.looseObject({ name: z.string(), namespace: z.string().optional() }),
  spec: z.strictObject({
    /** Pods of the object's namespace; {} selects them all. */
    podSelector: selector,
    /** Server ports of the connections to tune (the pod's own listening port, or the port it
     * connects to); absent: every connection of the selected pods. */
    ports: z
      .array(
        z.strictObject({
          port: z.number().int().min(1).max(65535),
          protocol: z.literal('TCP', { error: 'must be TCP' }).optional(),
        }),
      )
      .min(1)
      .optional(),
    tcp: tcpSettings,
  }),
  status: z.unknown().optional(),
});

/** The CiliumNetworkPolicy rule's `tcp:` block (cilium.ts includes it in the rule schema). */
export const ciliumTcpSchema = z.strictObject({
  enableBBR: z.boolean().optional(),
  zeroRTTSessionResumption: z.boolean().optional(),
  noSlowStartAfterIdle: z.boolean().optional(),
});

export type TcpSettings = z.infer<typeof tcpSettings>;

/** Problems of a TrafficOptimization object, with dotted field paths. */
export function checkTrafficOptimization(object: unknown): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const result = trafficOptimizationSchema.safeParse(object);
  for (const issue of result.error?.issues ?? []) {
    const segments = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: joinPath([...segments, key]), message: 'unknown field' });
      }
      continue;
    }
    const message =
      issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')
        ? issue.input === undefined
          ? 'required'
          : `must be ${issue.expected}`
        : issue.code === 'invalid_value'
          ? `must be one of: ${issue.values.map((v) => String(v)).join(', ')}`
          : issue.message;
    problems.push({ path: joinPath(segments), message });
  }
  const spec = (object as { spec?: { podSelector?: unknown } } | null)?.spec;
  for (const p of checkLabelSelector(spec?.podSelector, 'spec.podSelector')) problems.push(p);
  return problems;
}

/**
 * Congestion control names the object asks for that the kernel does not offer (`available`:
 * /proc/sys/net/ipv4/tcp_available_congestion_control, split). A module not loaded yet
 * (`modprobe tcp_bbr`) is not offered either: that is what bpf_setsockopt would refuse.
 */
export function congestionControlProblems(
  object: Record<string, unknown>,
  available: readonly string[],
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const offered = `the kernel offers: ${available.join(', ')} (tcp_available_congestion_control; modprobe tcp_<name> to add one)`;
  const asks = (path: string, name: unknown): void => {
    if (typeof name === 'string' && !available.includes(name)) {
      problems.push({
        path,
        message: `unknown congestion control ${JSON.stringify(name)}; ${offered}`,
      });
    }
  };
  const tcpOf = (rule: unknown): Record<string, unknown> | undefined => {
    const tcp = (rule as { tcp?: unknown } | null)?.tcp;
    return typeof tcp === 'object' && tcp !== null ? (tcp as Record<string, unknown>) : undefined;
  };
  if (object.kind === 'TrafficOptimization') {
    asks('spec.tcp.congestionControl', tcpOf(object.spec)?.congestionControl);
  } else {
    if (tcpOf(object.spec)?.enableBBR === true) asks('spec.tcp.enableBBR', 'bbr');
    if (Array.isArray(object.specs)) {
      object.specs.forEach((rule, i) => {
        if (tcpOf(rule)?.enableBBR === true) asks(`specs[${i}].tcp.enableBBR`, 'bbr');
      });
    }
  }
  return problems;
}

/** One source of tuning: a TrafficOptimization, or a CiliumNetworkPolicy rule's tcp block. */
export interface TuningRule {
  /** `TrafficOptimization ns/name` or `CiliumNetworkPolicy ns/name specs[i]`, for logs. */
  origin: string;
  namespace: string;
  selector: LabelSelector;
  /** Empty: every port. */
  ports: number[];
  settings: TcpSettings;
}

/** Settings of one pod for one port set (0: every port). */
export interface PodTuning {
  port: number;
  settings: TcpSettings;
  origins: string[];
}

function tuningFromCilium(p: Policy): TuningRule[] {
  const rules: [string, unknown][] = [];
  if (p.spec !== undefined) rules.push(['spec', p.spec]);
  (p.specs ?? []).forEach((r, i) => rules.push([`specs[${i}]`, r]));
  const out: TuningRule[] = [];
  for (const [where, raw] of rules) {
    const rule = raw as { endpointSelector?: CiliumEndpointSelector; tcp?: unknown } | undefined;
    const tcp = ciliumTcpSchema.safeParse(rule?.tcp);
    if (!rule?.endpointSelector || !tcp.success || rule.tcp === undefined) continue;
    const settings: TcpSettings = {
      ...(tcp.data.enableBBR ? { congestionControl: 'bbr' } : {}),
      ...(tcp.data.zeroRTTSessionResumption ? { fastOpen: true } : {}),
      ...(tcp.data.noSlowStartAfterIdle ? { noSlowStartAfterIdle: true } : {}),
    };
    if (Object.keys(settings).length === 0) continue;
    out.push({
      origin: `CiliumNetworkPolicy ${p.namespace}/${p.name} ${where}`,
      namespace: p.namespace,
      // Cilium's keys may carry a source prefix (k8s:app); pods' labels do not.
      selector: stripSourcePrefixes(rule.endpointSelector),
      ports: [],
      settings,
    });
  }
  return out;
}

function stripSourcePrefixes(s: CiliumEndpointSelector): LabelSelector {
  const strip = (k: string): string => k.replace(/^(k8s|any):/, '');
  return {
    ...(s.matchLabels
      ? {
          matchLabels: Object.fromEntries(
            Object.entries(s.matchLabels).map(([k, v]) => [strip(k), v]),
          ),
        }
      : {}),
    ...(s.matchExpressions
      ? { matchExpressions: s.matchExpressions.map((e) => ({ ...e, key: strip(e.key) })) }
      : {}),
  };
}

/** Every tuning rule of the cluster, in namespace/name order. */
export function tuningRules(state: ClusterState): TuningRule[] {
  const out: TuningRule[] = [];
  const policies = [...state.policies.values()].sort((a, b) =>
    `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  );
  for (const p of policies) {
    if (p.kind === 'TrafficOptimization') {
      const spec = trafficOptimizationSchema.shape.spec.safeParse(p.spec);
      if (!spec.success) continue; // validated on the way in; a stored bad object is skipped
      out.push({
        origin: `TrafficOptimization ${p.namespace}/${p.name}`,
        namespace: p.namespace,
        selector: spec.data.podSelector,
        ports: (spec.data.ports ?? []).map((x) => x.port),
        settings: spec.data.tcp,
      });
    } else if (p.kind === 'CiliumNetworkPolicy') {
      out.push(...tuningFromCilium(p));
    }
  }
  return out;
}

/**
 * The settings for one pod, per port (0: every port). Where several rules set the same field
 * for the same port, the first in namespace/name order wins (a port-specific rule overrides an
 * every-port rule field by field).
 */
export function podTuning(rules: readonly TuningRule[], pod: Pod): PodTuning[] {
  const byPort = new Map<number, PodTuning>();
  for (const rule of rules) {
    if (rule.namespace !== pod.namespace || !matchesSelector(rule.selector, pod.labels)) continue;
    for (const port of rule.ports.length > 0 ? rule.ports : [0]) {
      const entry = byPort.get(port) ?? { port, settings: {}, origins: [] };
      const merged: TcpSettings = { ...rule.settings, ...entry.settings };
      entry.settings = merged;
      entry.origins.push(rule.origin);
      byPort.set(port, entry);
    }
  }
  const all = byPort.get(0);
  if (all) {
    for (const [port, entry] of byPort) {
      if (port !== 0) entry.settings = { ...all.settings, ...entry.settings };
    }
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

/** Whether the namespace opted in to socket acceleration. */
export function isAccelerated(ns: Namespace | undefined): boolean {
  return ns?.annotations?.[ACCELERATE_ANNOTATION] === 'true';
}

/** Every congestion control name the rules ask for (to check against the kernel's list). */
export function congestionControls(rules: readonly TuningRule[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rules) {
    const cc = r.settings.congestionControl;
    if (cc !== undefined) out.set(cc, [...(out.get(cc) ?? []), r.origin]);
  }
  return out;
}
