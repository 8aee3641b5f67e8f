/**
 * CiliumNetworkPolicy (cilium.io/v2) checked with a zod schema of its main fields. Cilium's own
 * schema packages do not load on Node 20, so this mirrors cilium/api/v1/policy (rule.go,
 * ingress.go, egress.go, l4.go, http.go, l7.go). Every field Cilium defines is known here, so
 * a misspelt field (fromEndpoint for fromEndpoints) is an error instead of a silently empty rule;
 * the fields sluice does not enforce are accepted with a loose shape.
 */
import { z } from 'zod';

import { isIPv4, parseCidr } from './ip.js';
import { ciliumTcpSchema } from './traffic-optimization.js';
import { joinPath } from './paths.js';

/** Cilium selectors accept source-prefixed keys (k8s:io.kubernetes.pod.namespace). */
const endpointSelector = z.strictObject({
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

const cidrOrIp = z
  .string()
  .refine((s) => isIPv4(s) || parseCidr(s) !== undefined, 'must be an IPv4 address or CIDR');

const cidrSet = z.strictObject({
  cidr: cidrOrIp.optional(),
  cidrGroupRef: z.string().optional(),
  cidrGroupSelector: endpointSelector.optional(),
  except: z.array(cidrOrIp).optional(),
});

const ENTITIES = [
  'all',
  'world',
  'world-ipv4',
  'world-ipv6',
  'cluster',
  'host',
  'remote-node',
  'kube-apiserver',
  'ingress',
  'init',
  'health',
  'unmanaged',
  'none',
] as const;

const PORT_PATTERN = /^(0|[1-9][0-9]{0,4}|[a-z0-9]([a-z0-9-]*[a-z0-9])?)$/;
const portProtocol = z.strictObject({
  port: z
    .string({ error: 'must be a string (quote numbers: port: "80")' })
    .regex(PORT_PATTERN, 'must be a port number 0-65535 or a port name')
    .refine((p) => !/^[0-9]+$/.test(p) || Number(p) <= 65535, 'must be at most 65535'),
  endPort: z.number().int().min(0).max(65535).optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPV6', 'VRRP', 'IGMP', 'ANY']).optional(),
});

const httpRule = z.strictObject({
  method: z.string().optional(),
  path: z.string().optional(),
  host: z.string().optional(),
  headers: z.array(z.string()).optional(),
  headerMatches: z
    .array(
      z.strictObject({
        name: z.string(),
        value: z.string().optional(),
        mismatch: z.enum(['LOG', 'ADD', 'DELETE', 'REPLACE']).optional(),
        secret: z.unknown().optional(),
      }),
    )
    .optional(),
});

const l7Rules = z.strictObject({
  http: z.array(httpRule).optional(),
  kafka: z.array(z.record(z.string(), z.unknown())).optional(),
  dns: z
    .array(
      z.strictObject({ matchName: z.string().optional(), matchPattern: z.string().optional() }),
    )
    .optional(),
  /** Name of a generic L7 parser (e.g. "redis" for sluice's Redis proxy). */
  l7proto: z.string().optional(),
  /** Key/value rules for the l7proto parser, e.g. { command: "GET", key: "user:*" }. */
  l7: z.array(z.record(z.string(), z.string())).optional(),
});

const portRule = z.strictObject({
  ports: z.array(portProtocol).optional(),
  rules: l7Rules.optional(),
  terminatingTLS: z.unknown().optional(),
  originatingTLS: z.unknown().optional(),
  serverNames: z.array(z.string()).optional(),
  listener: z.unknown().optional(),
});

const portDenyRule = z.strictObject({ ports: z.array(portProtocol).optional() });

const icmpRules = z.array(z.unknown()).optional();

const ingressCommon = {
  fromEndpoints: z.array(endpointSelector).optional(),
  fromRequires: z.array(endpointSelector).optional(),
  fromCIDR: z.array(cidrOrIp).optional(),
  fromCIDRSet: z.array(cidrSet).optional(),
  fromEntities: z.array(z.enum(ENTITIES)).optional(),
  fromGroups: z.array(z.unknown()).optional(),
  fromNodes: z.array(endpointSelector).optional(),
  icmps: icmpRules,
};

const egressCommon = {
  toEndpoints: z.array(endpointSelector).optional(),
  toRequires: z.array(endpointSelector).optional(),
  toCIDR: z.array(cidrOrIp).optional(),
  toCIDRSet: z.array(cidrSet).optional(),
  toEntities: z.array(z.enum(ENTITIES)).optional(),
  toServices: z.array(z.unknown()).optional(),
  toGroups: z.array(z.unknown()).optional(),
  toNodes: z.array(endpointSelector).optional(),
  icmps: icmpRules,
};

const ingressRule = z.strictObject({
  ...ingressCommon,
  toPorts: z.array(portRule).optional(),
  authentication: z.unknown().optional(),
});
const ingressDenyRule = z.strictObject({
  ...ingressCommon,
  toPorts: z.array(portDenyRule).optional(),
});
const egressRule = z.strictObject({
  ...egressCommon,
  toPorts: z.array(portRule).optional(),
  toFQDNs: z
    .array(
      z.strictObject({ matchName: z.string().optional(), matchPattern: z.string().optional() }),
    )
    .optional(),
  authentication: z.unknown().optional(),
});
const egressDenyRule = z.strictObject({
  ...egressCommon,
  toPorts: z.array(portDenyRule).optional(),
});

export const ciliumRuleSchema = z.strictObject({
  endpointSelector: endpointSelector.optional(),
  nodeSelector: endpointSelector.optional(),
  ingress: z.array(ingressRule).optional(),
  ingressDeny: z.array(ingressDenyRule).optional(),
  egress: z.array(egressRule).optional(),
  egressDeny: z.array(egressDenyRule).optional(),
  labels: z
    .array(
      z.strictObject({
        key: z.string(),
        value: z.string().optional(),
        source: z.string().optional(),
      }),
    )
    .optional(),
  enableDefaultDeny: z
    .strictObject({ ingress: z.boolean().optional(), egress: z.boolean().optional() })
    .optional(),
  description: z.string().optional(),
  /** sluice: per-connection TCP tuning of the selected endpoints (traffic-optimization.ts). */
  tcp: ciliumTcpSchema.optional(),
});

export const ciliumNetworkPolicySchema = z.looseObject({
  apiVersion: z.literal('cilium.io/v2', { error: 'must be cilium.io/v2' }),
  kind: z.literal('CiliumNetworkPolicy'),
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: ciliumRuleSchema.optional(),
  specs: z.array(ciliumRuleSchema).optional(),
  status: z.unknown().optional(),
});

export type CiliumEndpointSelector = z.infer<typeof endpointSelector>;
export type CiliumPortRule = z.infer<typeof portRule>;
export type CiliumL7Rules = z.infer<typeof l7Rules>;
export type CiliumHttpRule = z.infer<typeof httpRule>;
export type CiliumIngressRule = z.infer<typeof ingressRule>;
export type CiliumEgressRule = z.infer<typeof egressRule>;
export type CiliumRule = z.infer<typeof ciliumRuleSchema>;
export type CiliumNetworkPolicyObject = z.infer<typeof ciliumNetworkPolicySchema>;

/** Problems of a CiliumNetworkPolicy object, with dotted field paths. */
export function checkCiliumNetworkPolicy(object: unknown): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const result = ciliumNetworkPolicySchema.safeParse(object);
  for (const issue of result.error?.issues ?? []) {
    const segments = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: joinPath([...segments, key]), message: 'unknown field' });
      }
      continue;
    }
    problems.push({ path: joinPath(segments), message: zodMessage(issue) });
  }
  // Rules zod would only check on an otherwise valid object; checked here so they are reported
  // together with the rest.
  const o = (typeof object === 'object' && object !== null ? object : {}) as Record<
    string,
    unknown
  >;
  const rules: [string, unknown][] = [];
  if (o.spec !== undefined) rules.push(['spec', o.spec]);
  if (Array.isArray(o.specs)) o.specs.forEach((r, i) => rules.push([`specs[${i}]`, r]));
  if (rules.length === 0) problems.push({ path: 'spec', message: 'spec or specs is required' });
  for (const [path, rule] of rules) {
    if (typeof rule !== 'object' || rule === null) continue;
    const r = rule as Record<string, unknown>;
    if ((r.endpointSelector === undefined) === (r.nodeSelector === undefined)) {
      problems.push({
        path: `${path}.endpointSelector`,
        message: 'exactly one of endpointSelector and nodeSelector is required',
      });
    }
  }
  return problems;
}

function zodMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.message.startsWith('Invalid input')
        ? `must be ${issue.expected}`
        : issue.message;
    case 'invalid_value':
      return `must be one of: ${issue.values.map((v) => String(v)).join(', ')}`;
    default:
      return issue.message;
  }
}
