/**
 * Manifest validation: every document is checked before anything is applied, and every
 * problem is reported (not just the first), with file, index, kind/namespace/name and the
 * field path.
 *
 * 1. Schema: the Kubernetes OpenAPI schemas from kubernetes-models (ajv), or for
 *    CiliumNetworkPolicy a zod schema (cilium.ts).
 * 2. What the API server checks beyond the schema and sluice's lab needs on top: names and
 *    labels, port ranges and names, unknown fields in the parts sluice reads, Service rules,
 *    TCP/UDP only (the lab does not do SCTP), IPv4 only, addresses inside the address plan.
 * 3. Across documents and against the state being applied to: duplicates, NodePort, ClusterIP,
 *    load-balancer and node address conflicts, immutable fields, nodes that do not exist.
 */
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1/Deployment';
import { EndpointSlice as EndpointSliceModel } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice';
import { NetworkPolicy as NetworkPolicyModel } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Namespace as NamespaceModel } from 'kubernetes-models/v1/Namespace';
import { Node as NodeModel } from 'kubernetes-models/v1/Node';
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import { Service as ServiceModel } from 'kubernetes-models/v1/Service';

import type { Addressing } from './addressing.js';
import {
  clusterIPChange,
  isAllocatedIP,
  keptClusterIP,
  keptLoadBalancerIP,
  keptNodePort,
} from './allocation.js';
import { checkCiliumNetworkPolicy } from './cilium.js';
import { checkTrafficOptimization, congestionControlProblems } from './traffic-optimization.js';
import { splitCommandLine } from './command.js';
import { ManifestError } from './errors.js';
import type { ManifestProblem } from './errors.js';
import {
  broadcastOf,
  cidrContains,
  cidrWithin,
  cidrsOverlap,
  isIPv4,
  mustParseCidr,
  parseCidr,
  parseIPv4,
} from './ip.js';
import type { ManifestDoc, ManifestSource } from './manifests.js';
import {
  checkDns1035Label,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkPortName,
  checkQualifiedName,
} from './names.js';
import { ANNOTATIONS, SERVICE_NAME_LABEL, normalizeObject } from './normalize.js';
import type { NodeInput, NormalizedObject } from './normalize.js';
import { childPath, keyPath, pointerToPath } from './paths.js';
import { checkLabelSelector, checkLabels, matchesSelector } from './selectors.js';
import type { ClusterState, Service } from './types.js';

/** The kinds sluice accepts, with the apiVersion each must have. */
export const SUPPORTED_KINDS = {
  Namespace: 'v1',
  Node: 'v1',
  Pod: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  CiliumNetworkPolicy: 'cilium.io/v2',
  TrafficOptimization: 'sluice.io/v1alpha1',
} as const;
export type SupportedKind = keyof typeof SUPPORTED_KINDS;

export const CLUSTER_SCOPED_KINDS: ReadonlySet<SupportedKind> = new Set(['Namespace', 'Node']);

export const isSupportedKind = (kind: string): kind is SupportedKind =>
  Object.hasOwn(SUPPORTED_KINDS, kind);

/** A document that passed validation, with its normalized form. */
export interface ValidDoc {
  source: ManifestSource;
  kind: SupportedKind;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
  /** The object as given, with null fields removed (Kubernetes reads null as absent). */
  object: Record<string, unknown>;
  normalized: NormalizedObject;
}

export interface ValidationContext {
  addressing: Addressing;
  /** The state the documents will be applied to; conflicts with it are problems. */
  state?: ClusterState;
  /** The nodes that will exist after the apply; a pod naming another node is a problem. */
  nodeNames?: readonly string[];
  /**
   * The kernel's congestion control algorithms (/proc/sys/net/ipv4/tcp_available_congestion_control),
   * read by the caller: a TrafficOptimization (or a CiliumNetworkPolicy's tcp.enableBBR) asking
   * for another is refused. Absent: not checked.
   */
  congestionControls?: readonly string[];
}

/** Check all documents; returns the valid ones and every problem found. */
export function checkManifests(
  docs: readonly ManifestDoc[],
  context: ValidationContext,
): { valid: ValidDoc[]; problems: ManifestProblem[] } {
  const { valid, problems } = checkEachManifest(docs, context);
  for (const p of crossCheck(valid, context)) problems.push(p);
  return { valid, problems };
}

/**
 * checkManifests without the checks across documents: each document's result depends on it
 * alone, so a caller can keep it until the document changes (and run crossCheck on them all).
 */
export function checkEachManifest(
  docs: readonly ManifestDoc[],
  context: ValidationContext,
): { valid: ValidDoc[]; problems: ManifestProblem[] } {
  const problems: ManifestProblem[] = [];
  const valid: ValidDoc[] = [];
  for (const doc of docs) {
    const result = checkDoc(doc, context);
    for (const p of result.problems) problems.push(p);
    if (result.valid) valid.push(result.valid);
  }
  return { valid, problems };
}

/** Check all documents; throws ManifestError listing every problem. */
export function validateManifests(
  docs: readonly ManifestDoc[],
  context: ValidationContext,
): ValidDoc[] {
  const { valid, problems } = checkManifests(docs, context);
  if (problems.length > 0) throw new ManifestError(problems);
  return valid;
}

// ---------------------------------------------------------------------------------------------
// Helpers

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const asStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asInt = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) ? v : undefined;

/** Remove null-valued keys, recursively (Kubernetes decodes null as "not set"). */
export function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (typeof value === 'object' && value !== null) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value as Obj)) {
      if (v !== null && v !== undefined) out[k] = stripNulls(v);
    }
    return out;
  }
  return value;
}

const SCTP_MESSAGE = 'SCTP is not supported by the sluice lab (TCP and UDP only)';

class Reporter {
  readonly problems: ManifestProblem[] = [];
  private readonly schemaPaths = new Set<string>();
  constructor(private readonly base: Omit<ManifestProblem, 'path' | 'message'>) {}
  /** A schema problem: later rule problems at the same path are redundant and dropped. */
  schema(path: string, message: string): void {
    this.schemaPaths.add(path);
    this.problems.push({ ...this.base, path, message });
  }
  add(path: string, message: string): void {
    if (this.schemaPaths.has(path)) return;
    this.problems.push({ ...this.base, path, message });
  }
}

// ---------------------------------------------------------------------------------------------
// One document

interface SchemaModel {
  validate(): void;
}
type SchemaModelCtor = new (data: Obj) => SchemaModel;

const SCHEMA_MODELS: Record<
  Exclude<SupportedKind, 'CiliumNetworkPolicy' | 'TrafficOptimization'>,
  SchemaModelCtor
> = {
  Namespace: NamespaceModel,
  Node: NodeModel,
  Pod: PodModel,
  Service: ServiceModel,
  Deployment: DeploymentModel,
  EndpointSlice: EndpointSliceModel as unknown as SchemaModelCtor,
  NetworkPolicy: NetworkPolicyModel,
};

function checkDoc(
  doc: ManifestDoc,
  context: ValidationContext,
): { problems: ManifestProblem[]; valid?: ValidDoc } {
  const raw = asObj(doc.object);
  const kindText = asStr(raw?.kind) ?? '';
  const supported = isSupportedKind(kindText);
  const metadata = asObj(raw?.metadata);
  const namespaced = supported && !CLUSTER_SCOPED_KINDS.has(kindText);
  const name = asStr(metadata?.name) ?? '';
  const namespace = namespaced ? (asStr(metadata?.namespace) ?? 'default') : '';
  const r = new Reporter({
    file: doc.source.file,
    index: doc.source.index,
    ...(doc.source.line !== undefined ? { line: doc.source.line } : {}),
    kind: kindText,
    namespace,
    name,
  });
  if (!raw) {
    r.add('', 'expected a Kubernetes object (a mapping with apiVersion, kind and metadata)');
    return { problems: r.problems };
  }
  const object = stripNulls(raw) as Obj;
  if (kindText === '') {
    r.add('kind', 'required');
    return { problems: r.problems };
  }
  if (!supported) {
    r.add(
      'kind',
      `unsupported kind ${JSON.stringify(kindText)}; sluice supports ${Object.keys(SUPPORTED_KINDS).join(', ')}`,
    );
    return { problems: r.problems };
  }
  if (object.apiVersion === undefined) r.add('apiVersion', 'required');

  if (kindText === 'CiliumNetworkPolicy') {
    for (const p of checkCiliumNetworkPolicy(object)) r.schema(p.path, p.message);
  } else if (kindText === 'TrafficOptimization') {
    for (const p of checkTrafficOptimization(object)) r.schema(p.path, p.message);
  } else {
    checkSchema(SCHEMA_MODELS[kindText], object, r);
  }
  checkUnknownFields(kindText, object, r);
  checkMetadata(kindText, object, r);
  const rules: Record<SupportedKind, (o: Obj, r: Reporter, c: ValidationContext) => void> = {
    Namespace: () => {},
    Node: checkNode,
    Pod: checkPod,
    Service: checkService,
    Deployment: checkDeployment,
    EndpointSlice: checkEndpointSlice,
    NetworkPolicy: checkNetworkPolicy,
    CiliumNetworkPolicy: checkCongestionControls,
    TrafficOptimization: checkCongestionControls,
  };
  rules[kindText](object, r, context);
  if (r.problems.length > 0) return { problems: r.problems };
  let normalized: NormalizedObject;
  try {
    normalized = normalizeObject(kindText, object);
  } catch (err) {
    r.add('', `cannot be read: ${err instanceof Error ? err.message : String(err)}`);
    return { problems: r.problems };
  }
  return {
    problems: [],
    valid: { source: doc.source, kind: kindText, namespace, name, object, normalized },
  };
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function checkSchema(Model: SchemaModelCtor, object: Obj, r: Reporter): void {
  try {
    new Model(object).validate();
    return;
  } catch (err) {
    const errors = (err as { errors?: unknown }).errors;
    if (!Array.isArray(errors)) {
      r.schema('', `schema validation failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // Group by field so an IntOrString mismatch reads "must be string or integer".
    const byPath = new Map<string, AjvError[]>();
    for (const e of errors as AjvError[]) {
      let path = pointerToPath(e.instancePath);
      if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') {
        path = childPath(path, e.params.missingProperty);
      }
      const list = byPath.get(path) ?? [];
      list.push(e);
      byPath.set(path, list);
    }
    for (const [path, list] of byPath) {
      const types = list.filter((e) => e.keyword === 'type').map((e) => String(e.params.type));
      if (types.length > 0) {
        r.schema(path, `must be ${types.join(' or ')}`);
        continue;
      }
      for (const e of list) {
        if (e.keyword === 'oneOf' || e.keyword === 'anyOf') continue;
        if (e.keyword === 'required') r.schema(path, 'required');
        else if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) {
          r.schema(
            path,
            `must be one of: ${(e.params.allowedValues as unknown[]).map(String).join(', ')}`,
          );
        } else r.schema(path, e.message ?? e.keyword);
      }
    }
  }
}

// Fields of the parts sluice reads. A field not listed is a typo (tragetPort) that Kubernetes'
// strict field validation would reject and that would otherwise be silently ignored.
const TOP_LEVEL_FIELDS: Record<SupportedKind, string[]> = {
  Namespace: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  Node: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  Pod: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  Service: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  Deployment: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  EndpointSlice: ['apiVersion', 'kind', 'metadata', 'addressType', 'endpoints', 'ports'],
  NetworkPolicy: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  CiliumNetworkPolicy: ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status'],
  TrafficOptimization: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
};
const METADATA_FIELDS = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
const SERVICE_SPEC_FIELDS = [
  'ports',
  'selector',
  'clusterIP',
  'clusterIPs',
  'type',
  'externalIPs',
  'sessionAffinity',
  'loadBalancerIP',
  'loadBalancerSourceRanges',
  'externalName',
  'externalTrafficPolicy',
  'healthCheckNodePort',
  'publishNotReadyAddresses',
  'sessionAffinityConfig',
  'ipFamilies',
  'ipFamilyPolicy',
  'allocateLoadBalancerNodePorts',
  'loadBalancerClass',
  'internalTrafficPolicy',
  'trafficDistribution',
];
const SERVICE_PORT_FIELDS = ['name', 'protocol', 'appProtocol', 'port', 'targetPort', 'nodePort'];
const DEPLOYMENT_SPEC_FIELDS = [
  'replicas',
  'selector',
  'template',
  'strategy',
  'minReadySeconds',
  'revisionHistoryLimit',
  'paused',
  'progressDeadlineSeconds',
];
const CONTAINER_FIELDS = [
  'name',
  'image',
  'command',
  'args',
  'workingDir',
  'ports',
  'env',
  'envFrom',
  'resources',
  'resizePolicy',
  'restartPolicy',
  'restartPolicyRules',
  'volumeMounts',
  'volumeDevices',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
];
const CONTAINER_PORT_FIELDS = ['name', 'hostPort', 'containerPort', 'protocol', 'hostIP'];
const ENDPOINT_FIELDS = [
  'addresses',
  'conditions',
  'hostname',
  'targetRef',
  'deprecatedTopology',
  'nodeName',
  'zone',
  'hints',
];
const ENDPOINT_CONDITION_FIELDS = ['ready', 'serving', 'terminating'];
const ENDPOINT_PORT_FIELDS = ['name', 'protocol', 'port', 'appProtocol'];

function unknownFields(value: unknown, allowed: readonly string[], prefix: string, r: Reporter) {
  const o = asObj(value);
  if (!o) return;
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) r.add(childPath(prefix, key), 'unknown field');
  }
}

function checkUnknownFields(kind: SupportedKind, o: Obj, r: Reporter): void {
  unknownFields(o, TOP_LEVEL_FIELDS[kind], '', r);
  unknownFields(o.metadata, METADATA_FIELDS, 'metadata', r);
  const spec = asObj(o.spec);
  const containers = (podSpec: unknown, prefix: string): void => {
    asArr(asObj(podSpec)?.containers).forEach((c, i) => {
      const at = `${prefix}.containers[${i}]`;
      unknownFields(c, CONTAINER_FIELDS, at, r);
      asArr(asObj(c)?.ports).forEach((p, j) =>
        unknownFields(p, CONTAINER_PORT_FIELDS, `${at}.ports[${j}]`, r),
      );
    });
  };
  switch (kind) {
    case 'Service':
      unknownFields(spec, SERVICE_SPEC_FIELDS, 'spec', r);
      asArr(spec?.ports).forEach((p, i) =>
        unknownFields(p, SERVICE_PORT_FIELDS, `spec.ports[${i}]`, r),
      );
      break;
    case 'Pod':
      containers(spec, 'spec');
      break;
    case 'Deployment':
      unknownFields(spec, DEPLOYMENT_SPEC_FIELDS, 'spec', r);
      unknownFields(asObj(spec?.template)?.metadata, METADATA_FIELDS, 'spec.template.metadata', r);
      containers(asObj(spec?.template)?.spec, 'spec.template.spec');
      break;
    case 'EndpointSlice':
      asArr(o.endpoints).forEach((e, i) => {
        unknownFields(e, ENDPOINT_FIELDS, `endpoints[${i}]`, r);
        unknownFields(
          asObj(e)?.conditions,
          ENDPOINT_CONDITION_FIELDS,
          `endpoints[${i}].conditions`,
          r,
        );
      });
      asArr(o.ports).forEach((p, i) => unknownFields(p, ENDPOINT_PORT_FIELDS, `ports[${i}]`, r));
      break;
    default:
      break;
  }
}

function checkMetadata(kind: SupportedKind, o: Obj, r: Reporter): void {
  const metadata = asObj(o.metadata);
  const name = asStr(metadata?.name);
  if (name === undefined || name === '') {
    r.add(
      'metadata.name',
      metadata?.generateName !== undefined
        ? 'required (generateName is not supported)'
        : 'required',
    );
  } else {
    const check =
      kind === 'Namespace'
        ? checkDns1123Label
        : kind === 'Service'
          ? checkDns1035Label
          : checkDns1123Subdomain;
    const bad = check(name);
    if (bad) r.add('metadata.name', bad);
  }
  const namespace = asStr(metadata?.namespace);
  if (namespace !== undefined && !CLUSTER_SCOPED_KINDS.has(kind)) {
    const bad = checkDns1123Label(namespace);
    if (bad) r.add('metadata.namespace', bad);
  }
  for (const p of checkLabels(metadata?.labels, 'metadata.labels')) r.add(p.path, p.message);
  checkAnnotationKeys(metadata?.annotations, 'metadata.annotations', r);
}

function checkAnnotationKeys(annotations: unknown, prefix: string, r: Reporter): void {
  for (const key of Object.keys(asObj(annotations) ?? {})) {
    const bad = checkQualifiedName(key);
    if (bad) r.add(`${prefix}${keyPath(key)}`, `invalid annotation key: ${bad}`);
  }
}

function checkPortNumber(value: unknown, path: string, r: Reporter): void {
  const n = asInt(value);
  if (n !== undefined && (n < 1 || n > 65535)) {
    r.add(path, `must be between 1 and 65535, got ${n}`);
  }
}

function checkProtocol(value: unknown, path: string, r: Reporter): void {
  if (value === 'SCTP') r.add(path, SCTP_MESSAGE);
}

// ---------------------------------------------------------------------------------------------
// Pods and templates

function checkPodSpec(
  specValue: unknown,
  prefix: string,
  annotations: Obj,
  annotationsPath: string,
  r: Reporter,
): void {
  const spec = asObj(specValue);
  if (!spec) return;
  if (spec.hostNetwork === true) {
    r.add(
      `${prefix}.hostNetwork`,
      'not supported by the sluice lab (every pod has its own network namespace)',
    );
  }
  const nodeName = asStr(spec.nodeName);
  if (nodeName !== undefined && nodeName !== '') {
    const bad = checkDns1123Subdomain(nodeName);
    if (bad) r.add(`${prefix}.nodeName`, bad);
  }
  const containers = asArr(spec.containers);
  if (Array.isArray(spec.containers) && containers.length === 0) {
    r.add(`${prefix}.containers`, 'must have at least one container');
  }
  const containerNames = new Map<string, number>();
  const portNames = new Map<string, string>();
  containers.forEach((cValue, i) => {
    const c = asObj(cValue);
    if (!c) return;
    const at = `${prefix}.containers[${i}]`;
    const cname = asStr(c.name);
    if (cname !== undefined) {
      const bad = checkDns1123Label(cname);
      if (bad) r.add(`${at}.name`, bad);
      const first = containerNames.get(cname);
      if (first !== undefined) {
        r.add(
          `${at}.name`,
          `duplicate container name ${JSON.stringify(cname)} (also ${prefix}.containers[${first}])`,
        );
      } else containerNames.set(cname, i);
    }
    if (asStr(c.image) === undefined || c.image === '') r.add(`${at}.image`, 'required');
    asArr(c.ports).forEach((pValue, j) => {
      const p = asObj(pValue);
      if (!p) return;
      const pat = `${at}.ports[${j}]`;
      checkPortNumber(p.containerPort, `${pat}.containerPort`, r);
      checkProtocol(p.protocol, `${pat}.protocol`, r);
      const pname = asStr(p.name);
      if (pname !== undefined) {
        const bad = checkPortName(pname);
        if (bad) r.add(`${pat}.name`, bad);
        const first = portNames.get(pname);
        if (first !== undefined) {
          r.add(
            `${pat}.name`,
            `duplicate port name ${JSON.stringify(pname)} in the pod (also ${first})`,
          );
        } else portNames.set(pname, pat);
      }
    });
  });
  // Annotations the lab reads.
  for (const key of [ANNOTATIONS.ready, ANNOTATIONS.virtual]) {
    const value = annotations[key];
    if (value !== undefined && value !== 'true' && value !== 'false') {
      r.add(
        `${annotationsPath}${keyPath(key)}`,
        `must be "true" or "false", got ${JSON.stringify(value)}`,
      );
    }
  }
  for (const [key, value] of Object.entries(annotations)) {
    if (key !== ANNOTATIONS.command && !key.startsWith(ANNOTATIONS.commandFor)) continue;
    const path = `${annotationsPath}${keyPath(key)}`;
    if (key.startsWith(ANNOTATIONS.commandFor)) {
      const container = key.slice(ANNOTATIONS.commandFor.length);
      if (!containerNames.has(container)) {
        r.add(path, `names container ${JSON.stringify(container)}, which the pod does not have`);
      }
    }
    if (typeof value !== 'string') continue;
    try {
      splitCommandLine(value);
    } catch (err) {
      r.add(path, `invalid command line: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

function checkPod(o: Obj, r: Reporter): void {
  const annotations = asObj(asObj(o.metadata)?.annotations) ?? {};
  checkPodSpec(o.spec, 'spec', annotations, 'metadata.annotations', r);
}

function checkDeployment(o: Obj, r: Reporter): void {
  const spec = asObj(o.spec);
  if (!spec) {
    r.add('spec', 'required');
    return;
  }
  const replicas = asInt(spec.replicas);
  if (replicas !== undefined && replicas < 0)
    r.add('spec.replicas', `must be >= 0, got ${replicas}`);
  const selector = asObj(spec.selector);
  const template = asObj(spec.template);
  const templateMeta = asObj(template?.metadata);
  const templateLabels = asObj(templateMeta?.labels) ?? {};
  for (const p of checkLabels(templateLabels, 'spec.template.metadata.labels'))
    r.add(p.path, p.message);
  checkAnnotationKeys(templateMeta?.annotations, 'spec.template.metadata.annotations', r);
  if (selector) {
    const problems = checkLabelSelector(selector, 'spec.selector');
    for (const p of problems) r.add(p.path, p.message);
    const empty =
      Object.keys(asObj(selector.matchLabels) ?? {}).length === 0 &&
      asArr(selector.matchExpressions).length === 0;
    if (empty) r.add('spec.selector', 'must not be empty (it would select every pod)');
    else if (
      problems.length === 0 &&
      r.problems.length === 0 &&
      !matchesSelector(selector, templateLabels as Record<string, string>)
    ) {
      r.add('spec.template.metadata.labels', '`selector` does not match template `labels`');
    }
  }
  checkPodSpec(
    template?.spec,
    'spec.template.spec',
    asObj(templateMeta?.annotations) ?? {},
    'spec.template.metadata.annotations',
    r,
  );
}

// ---------------------------------------------------------------------------------------------
// Services

function checkService(o: Obj, r: Reporter, context: ValidationContext): void {
  const spec = asObj(o.spec) ?? {};
  const { addressing } = context;
  const type = asStr(spec.type) ?? 'ClusterIP';
  const clusterIP = asStr(spec.clusterIP) ?? asStr(asArr(spec.clusterIPs)[0]) ?? '';
  const headless = clusterIP === 'None';
  const ports = asArr(spec.ports);
  const nodePortRange = addressing.nodePortRange;

  if (type === 'ExternalName') {
    const externalName = asStr(spec.externalName);
    if (externalName === undefined || externalName === '')
      r.add('spec.externalName', 'required for type ExternalName');
    else {
      const bad = checkDns1123Subdomain(externalName.replace(/\.$/, ''));
      if (bad) r.add('spec.externalName', bad);
    }
    if (clusterIP !== '') r.add('spec.clusterIP', 'must be empty for type ExternalName');
  } else if (ports.length === 0 && !headless) {
    r.add('spec.ports', 'required (at least one port, unless the service is headless)');
  }

  const serviceCIDR = mustParseCidr(addressing.serviceCIDR);
  if (headless && (type === 'NodePort' || type === 'LoadBalancer')) {
    r.add('spec.clusterIP', `may not be "None" for type ${type}`);
  } else if (clusterIP !== '' && !headless && type !== 'ExternalName') {
    const ip = parseIPv4(clusterIP);
    if (ip === undefined)
      r.add(
        'spec.clusterIP',
        `must be an IPv4 address or "None", got ${JSON.stringify(clusterIP)}`,
      );
    else if (!cidrContains(serviceCIDR, ip)) {
      r.add(
        'spec.clusterIP',
        `${clusterIP} is not inside the service CIDR ${addressing.serviceCIDR} (or use "None" for a headless service)`,
      );
    } else if (ip === serviceCIDR.network || ip === broadcastOf(serviceCIDR)) {
      r.add(
        'spec.clusterIP',
        `${clusterIP} is the network or broadcast address of ${addressing.serviceCIDR}`,
      );
    } else if (ip === serviceCIDR.network + 1) {
      r.add('spec.clusterIP', `${clusterIP} is reserved (the first address of the service CIDR)`);
    }
  }
  const clusterIPs = asArr(spec.clusterIPs);
  if (clusterIPs.length > 1)
    r.add('spec.clusterIPs', 'dual-stack is not supported by the sluice lab (IPv4 only)');
  if (
    clusterIPs.length === 1 &&
    asStr(spec.clusterIP) !== undefined &&
    clusterIPs[0] !== spec.clusterIP
  ) {
    r.add('spec.clusterIPs[0]', 'must match spec.clusterIP');
  }
  asArr(spec.ipFamilies).forEach((f, i) => {
    if (f !== 'IPv4') r.add(`spec.ipFamilies[${i}]`, 'only IPv4 is supported by the sluice lab');
  });
  if (spec.ipFamilyPolicy === 'RequireDualStack') {
    r.add('spec.ipFamilyPolicy', 'RequireDualStack is not supported by the sluice lab (IPv4 only)');
  }

  const seenNames = new Map<string, number>();
  const seenPorts = new Map<string, number>();
  const seenNodePorts = new Map<string, number>();
  ports.forEach((pValue, i) => {
    const p = asObj(pValue);
    if (!p) return;
    const at = `spec.ports[${i}]`;
    checkPortNumber(p.port, `${at}.port`, r);
    checkProtocol(p.protocol, `${at}.protocol`, r);
    const protocol = asStr(p.protocol) ?? 'TCP';
    const name = asStr(p.name) ?? '';
    if (name === '' && ports.length > 1)
      r.add(`${at}.name`, 'required when the service has more than one port');
    if (name !== '') {
      const bad = checkDns1123Label(name);
      if (bad) r.add(`${at}.name`, bad);
      const first = seenNames.get(name);
      if (first !== undefined)
        r.add(
          `${at}.name`,
          `duplicate port name ${JSON.stringify(name)} (also spec.ports[${first}])`,
        );
      else seenNames.set(name, i);
    }
    const port = asInt(p.port);
    if (port !== undefined) {
      const key = `${port}/${protocol}`;
      const first = seenPorts.get(key);
      if (first !== undefined)
        r.add(`${at}.port`, `duplicate port ${key} (also spec.ports[${first}])`);
      else seenPorts.set(key, i);
    }
    const target = p.targetPort;
    if (typeof target === 'number') {
      if (!Number.isInteger(target)) r.add(`${at}.targetPort`, 'must be an integer or a port name');
      else checkPortNumber(target, `${at}.targetPort`, r);
    } else if (typeof target === 'string') {
      const bad = checkPortName(target);
      if (bad) r.add(`${at}.targetPort`, `must be a port number or a valid port name: ${bad}`);
    }
    const nodePort = asInt(p.nodePort);
    if (nodePort !== undefined) {
      if (type !== 'NodePort' && type !== 'LoadBalancer') {
        r.add(`${at}.nodePort`, `may not be used when type is ${type}`);
      } else if (nodePort < nodePortRange.min || nodePort > nodePortRange.max) {
        r.add(
          `${at}.nodePort`,
          `must be within the node port range ${nodePortRange.min}-${nodePortRange.max}, got ${nodePort}`,
        );
      } else {
        const key = `${nodePort}/${protocol}`;
        const first = seenNodePorts.get(key);
        if (first !== undefined)
          r.add(`${at}.nodePort`, `duplicate node port ${key} (also spec.ports[${first}])`);
        else seenNodePorts.set(key, i);
      }
    }
  });

  for (const p of checkLabels(spec.selector, 'spec.selector')) r.add(p.path, p.message);

  if (spec.sessionAffinity === 'ClientIP') {
    const timeout = asInt(asObj(asObj(spec.sessionAffinityConfig)?.clientIP)?.timeoutSeconds);
    if (timeout !== undefined && (timeout < 1 || timeout > 86400)) {
      r.add(
        'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
        `must be between 1 and 86400, got ${timeout}`,
      );
    }
  } else if (asObj(spec.sessionAffinityConfig)?.clientIP !== undefined) {
    r.add('spec.sessionAffinityConfig', 'may only be set when sessionAffinity is ClientIP');
  }

  const externalIPs = asArr(spec.externalIPs);
  externalIPs.forEach((ip, i) => {
    if (typeof ip === 'string' && !isIPv4(ip))
      r.add(`spec.externalIPs[${i}]`, `must be an IPv4 address, got ${JSON.stringify(ip)}`);
  });
  const externallyAccessible =
    type === 'NodePort' ||
    type === 'LoadBalancer' ||
    (type === 'ClusterIP' && externalIPs.length > 0);
  if (spec.externalTrafficPolicy !== undefined && !externallyAccessible) {
    r.add(
      'spec.externalTrafficPolicy',
      'may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)',
    );
  }

  const lbIP = asStr(spec.loadBalancerIP);
  if (lbIP !== undefined && lbIP !== '') {
    const ip = parseIPv4(lbIP);
    const pool = mustParseCidr(addressing.loadBalancerPool);
    if (type !== 'LoadBalancer')
      r.add('spec.loadBalancerIP', 'may only be set for type LoadBalancer');
    else if (ip === undefined)
      r.add('spec.loadBalancerIP', `must be an IPv4 address, got ${JSON.stringify(lbIP)}`);
    else if (!cidrContains(pool, ip) || ip === pool.network || ip === broadcastOf(pool)) {
      r.add(
        'spec.loadBalancerIP',
        `${lbIP} is not a usable address of the load-balancer pool ${addressing.loadBalancerPool}`,
      );
    }
  }
  if (asArr(spec.loadBalancerSourceRanges).length > 0) {
    r.add('spec.loadBalancerSourceRanges', 'not supported by sluice yet');
  }
  checkFrontendsOutsidePods(o, headless ? '' : clusterIP, r, addressing);
}

/**
 * No frontend inside the pods' range: sluice's datapath takes a packet to a pod address for the
 * pods' own traffic and never looks it up as a frontend (lb4_to_pod, bpf/include/lb_pipeline.h),
 * and kube-proxy would capture that pod's traffic. Checked only where the range is known.
 */
function checkFrontendsOutsidePods(
  o: Obj,
  clusterIP: string,
  r: Reporter,
  addressing: Addressing,
): void {
  const pods = mustParseCidr(addressing.podCIDRBase);
  if (pods.prefix === 0) return;
  const spec = asObj(o.spec) ?? {};
  const ingress = asArr(asObj(asObj(o.status)?.loadBalancer)?.ingress);
  const frontends: [string, unknown][] = [
    ['spec.clusterIP', clusterIP],
    ...asArr(spec.externalIPs).map((ip, i): [string, unknown] => [`spec.externalIPs[${i}]`, ip]),
    ['spec.loadBalancerIP', spec.loadBalancerIP],
    ['status.loadBalancer.ingress[0].ip', asObj(ingress[0])?.ip],
  ];
  for (const [path, value] of frontends) {
    const ip = typeof value === 'string' ? parseIPv4(value) : undefined;
    if (ip !== undefined && cidrContains(pods, ip))
      r.add(path, `${String(value)} is inside the pod range ${addressing.podCIDRBase}`);
  }
}

// ---------------------------------------------------------------------------------------------
// EndpointSlices, Nodes, NetworkPolicies

function checkEndpointSlice(o: Obj, r: Reporter): void {
  const labels = asObj(asObj(o.metadata)?.labels) ?? {};
  const service = asStr(labels[SERVICE_NAME_LABEL]);
  if (service === undefined || service === '') {
    r.add(
      `metadata.labels${keyPath(SERVICE_NAME_LABEL)}`,
      'required: the name of the Service these endpoints belong to',
    );
  }
  if (o.addressType !== undefined && o.addressType !== 'IPv4') {
    r.add(
      'addressType',
      `only IPv4 is supported by the sluice lab, got ${JSON.stringify(o.addressType)}`,
    );
  }
  asArr(o.endpoints).forEach((eValue, i) => {
    const e = asObj(eValue);
    if (!e) return;
    const addresses = asArr(e.addresses);
    if (Array.isArray(e.addresses) && addresses.length === 0)
      r.add(`endpoints[${i}].addresses`, 'must have at least one address');
    addresses.forEach((a, j) => {
      if (typeof a === 'string' && !isIPv4(a))
        r.add(
          `endpoints[${i}].addresses[${j}]`,
          `must be an IPv4 address, got ${JSON.stringify(a)}`,
        );
    });
    const nodeName = asStr(e.nodeName);
    if (nodeName !== undefined) {
      const bad = checkDns1123Subdomain(nodeName);
      if (bad) r.add(`endpoints[${i}].nodeName`, bad);
    }
  });
  const names = new Map<string, number>();
  asArr(o.ports).forEach((pValue, i) => {
    const p = asObj(pValue);
    if (!p) return;
    if (p.port === undefined)
      r.add(
        `ports[${i}].port`,
        'required by sluice (a port without a number means "all ports", which kube-proxy ignores)',
      );
    checkPortNumber(p.port, `ports[${i}].port`, r);
    checkProtocol(p.protocol, `ports[${i}].protocol`, r);
    const name = asStr(p.name) ?? '';
    if (name !== '') {
      const bad = checkDns1123Label(name);
      if (bad) r.add(`ports[${i}].name`, bad);
    }
    const first = names.get(name);
    if (first !== undefined)
      r.add(
        `ports[${i}].name`,
        `duplicate port name ${JSON.stringify(name)} (also ports[${first}])`,
      );
    else names.set(name, i);
  });
}

function checkNode(o: Obj, r: Reporter, context: ValidationContext): void {
  const { addressing } = context;
  const fabric = mustParseCidr(addressing.fabricCIDR);
  const podBase = mustParseCidr(addressing.podCIDRBase);
  asArr(asObj(o.status)?.addresses).forEach((aValue, i) => {
    const a = asObj(aValue);
    if (a?.type !== 'InternalIP' || typeof a.address !== 'string') return;
    const path = `status.addresses[${i}].address`;
    const ip = parseIPv4(a.address);
    if (ip === undefined) r.add(path, `must be an IPv4 address, got ${JSON.stringify(a.address)}`);
    else if (!cidrContains(fabric, ip))
      r.add(path, `${a.address} is not inside the fabric ${addressing.fabricCIDR}`);
    else if (ip - fabric.network < 3 || ip === broadcastOf(fabric)) {
      r.add(
        path,
        `${a.address} is reserved on the fabric (network, bridge, external client, broadcast)`,
      );
    }
  });
  const spec = asObj(o.spec);
  const podCIDR = asStr(spec?.podCIDR) ?? asStr(asArr(spec?.podCIDRs)[0]);
  if (podCIDR !== undefined) {
    const path = spec?.podCIDR !== undefined ? 'spec.podCIDR' : 'spec.podCIDRs[0]';
    const cidr = parseCidr(podCIDR);
    if (!cidr)
      r.add(path, `must be an IPv4 CIDR with no host bits set, got ${JSON.stringify(podCIDR)}`);
    else if (!cidrWithin(cidr, podBase))
      r.add(path, `${podCIDR} is not inside the pod range ${addressing.podCIDRBase}`);
    else if (cidr.prefix > 30) r.add(path, `${podCIDR} is too small for pods (at most /30)`);
  }
  if (asArr(spec?.podCIDRs).length > 1)
    r.add('spec.podCIDRs', 'dual-stack is not supported by the sluice lab (IPv4 only)');
}

function checkNetworkPolicy(o: Obj, r: Reporter): void {
  const spec = asObj(o.spec);
  if (!spec) return;
  for (const p of checkLabelSelector(spec.podSelector, 'spec.podSelector'))
    r.add(p.path, p.message);
  const peers = (list: unknown, at: string): void => {
    asArr(list).forEach((peerValue, i) => {
      const peer = asObj(peerValue);
      if (!peer) return;
      const pat = `${at}[${i}]`;
      for (const p of checkLabelSelector(peer.podSelector, `${pat}.podSelector`))
        r.add(p.path, p.message);
      for (const p of checkLabelSelector(peer.namespaceSelector, `${pat}.namespaceSelector`))
        r.add(p.path, p.message);
      const block = asObj(peer.ipBlock);
      if (block) {
        if (peer.podSelector !== undefined || peer.namespaceSelector !== undefined) {
          r.add(`${pat}.ipBlock`, 'may not be combined with podSelector or namespaceSelector');
        }
        const cidr = typeof block.cidr === 'string' ? parseCidr(block.cidr) : undefined;
        if (typeof block.cidr === 'string' && !cidr)
          r.add(
            `${pat}.ipBlock.cidr`,
            `must be an IPv4 CIDR with no host bits set, got ${JSON.stringify(block.cidr)}`,
          );
        asArr(block.except).forEach((e, j) => {
          const ex = typeof e === 'string' ? parseCidr(e) : undefined;
          if (typeof e === 'string' && !ex)
            r.add(`${pat}.ipBlock.except[${j}]`, `must be an IPv4 CIDR, got ${JSON.stringify(e)}`);
          else if (ex && cidr && !(cidrWithin(ex, cidr) && ex.prefix > cidr.prefix)) {
            r.add(`${pat}.ipBlock.except[${j}]`, `must be strictly inside ${String(block.cidr)}`);
          }
        });
      }
    });
  };
  const ports = (list: unknown, at: string): void => {
    asArr(list).forEach((pValue, i) => {
      const p = asObj(pValue);
      if (!p) return;
      const pat = `${at}[${i}]`;
      checkProtocol(p.protocol, `${pat}.protocol`, r);
      if (typeof p.port === 'number') checkPortNumber(p.port, `${pat}.port`, r);
      else if (typeof p.port === 'string') {
        const bad = checkPortName(p.port);
        if (bad) r.add(`${pat}.port`, `must be a port number or a valid port name: ${bad}`);
      }
      const endPort = asInt(p.endPort);
      if (endPort !== undefined) {
        if (typeof p.port !== 'number')
          r.add(`${pat}.endPort`, 'may only be set with a numeric port');
        else if (endPort < p.port) r.add(`${pat}.endPort`, `must be >= port (${p.port})`);
        else checkPortNumber(endPort, `${pat}.endPort`, r);
      }
    });
  };
  asArr(spec.ingress).forEach((rule, i) => {
    peers(asObj(rule)?.from, `spec.ingress[${i}].from`);
    ports(asObj(rule)?.ports, `spec.ingress[${i}].ports`);
  });
  asArr(spec.egress).forEach((rule, i) => {
    peers(asObj(rule)?.to, `spec.egress[${i}].to`);
    ports(asObj(rule)?.ports, `spec.egress[${i}].ports`);
  });
}

// ---------------------------------------------------------------------------------------------
// Across documents and against the state

/** The checks across documents of checkManifests, on documents checked one by one already. */
export function crossCheck(
  valid: readonly ValidDoc[],
  context: ValidationContext,
): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (doc: ValidDoc, path: string, message: string): void => {
    problems.push({
      file: doc.source.file,
      index: doc.source.index,
      ...(doc.source.line !== undefined ? { line: doc.source.line } : {}),
      kind: doc.kind,
      namespace: doc.namespace,
      name: doc.name,
      path,
      message,
    });
  };
  const where = (doc: ValidDoc): string => `${doc.source.file}#${doc.source.index}`;

  // Duplicates. NetworkPolicies and CiliumNetworkPolicies share one map keyed namespace/name.
  const seen = new Map<string, ValidDoc>();
  const unique: ValidDoc[] = [];
  for (const doc of valid) {
    const group =
      doc.kind === 'CiliumNetworkPolicy' || doc.kind === 'TrafficOptimization'
        ? 'NetworkPolicy'
        : doc.kind;
    const key = `${group}/${doc.namespace}/${doc.name}`;
    const first = seen.get(key);
    if (first) {
      report(
        doc,
        'metadata.name',
        first.kind === doc.kind
          ? `duplicate ${doc.kind} (also ${where(first)})`
          : `a ${first.kind} with this name is also given (${where(first)}); sluice keeps policies by namespace/name`,
      );
    } else {
      seen.set(key, doc);
      unique.push(doc);
    }
  }
  const existingPolicy = (doc: ValidDoc) =>
    context.state?.policies.get(`${doc.namespace}/${doc.name}`);
  for (const doc of unique) {
    if (doc.normalized.kind !== 'NetworkPolicy' && doc.normalized.kind !== 'CiliumNetworkPolicy')
      continue;
    const existing = existingPolicy(doc);
    if (existing && existing.kind !== doc.kind) {
      report(
        doc,
        'metadata.name',
        `a ${existing.kind} ${doc.namespace}/${doc.name} already exists; sluice keeps policies by namespace/name`,
      );
    }
  }

  // Pods must name nodes that exist.
  if (context.nodeNames) {
    const nodes = new Set(context.nodeNames);
    for (const doc of unique) {
      const n = doc.normalized;
      const nodeName =
        n.kind === 'Pod'
          ? n.value.nodeName
          : n.kind === 'Deployment'
            ? n.value.template.nodeName
            : undefined;
      if (nodeName !== undefined && !nodes.has(nodeName)) {
        report(
          doc,
          n.kind === 'Pod' ? 'spec.nodeName' : 'spec.template.spec.nodeName',
          `node ${JSON.stringify(nodeName)} does not exist`,
        );
      }
    }
    // A pod that exists keeps its node.
    for (const doc of unique) {
      if (doc.normalized.kind !== 'Pod') continue;
      const pod = doc.normalized.value;
      const existing = context.state?.pods.get(`${pod.namespace}/${pod.name}`);
      if (existing && pod.nodeName !== undefined && existing.nodeName !== pod.nodeName) {
        report(doc, 'spec.nodeName', `field is immutable (the pod runs on ${existing.nodeName})`);
      }
    }
  }

  checkNodeAddresses(unique, context, report);
  checkServiceAllocations(unique, context, report);
  return problems;
}

type Report = (doc: ValidDoc, path: string, message: string) => void;

function checkNodeAddresses(
  docs: readonly ValidDoc[],
  context: ValidationContext,
  report: Report,
): void {
  const nodeDocs = docs.filter(
    (d): d is ValidDoc & { normalized: { kind: 'Node'; value: NodeInput } } =>
      d.normalized.kind === 'Node',
  );
  const ipOwner = new Map<string, string>();
  const cidrOwners: { cidr: string; owner: string }[] = [];
  for (const node of context.state?.nodes.values() ?? []) {
    // A re-applied node keeps its addresses (naming others is an immutability problem below).
    ipOwner.set(node.ip, node.name);
    cidrOwners.push({ cidr: node.podCIDR, owner: node.name });
  }
  for (const doc of nodeDocs) {
    const node = doc.normalized.value;
    const existing = context.state?.nodes.get(node.name);
    const ipPath = `status.addresses[${addressIndex(doc.object)}].address`;
    const cidrPath =
      asObj(doc.object.spec)?.podCIDR !== undefined ? 'spec.podCIDR' : 'spec.podCIDRs[0]';
    if (existing && node.ip !== undefined && node.ip !== existing.ip) {
      report(doc, ipPath, `field is immutable in the lab (the node has ${existing.ip})`);
    } else if (node.ip !== undefined) {
      const owner = ipOwner.get(node.ip);
      if (owner !== undefined && owner !== node.name)
        report(doc, ipPath, `${node.ip} is already the address of node ${owner}`);
      else ipOwner.set(node.ip, node.name);
    }
    if (existing && node.podCIDR !== undefined && node.podCIDR !== existing.podCIDR) {
      report(doc, cidrPath, `field is immutable (the node has ${existing.podCIDR})`);
    } else if (node.podCIDR !== undefined) {
      const cidr = mustParseCidr(node.podCIDR);
      const clash = cidrOwners.find(
        (c) => c.owner !== node.name && cidrsOverlap(mustParseCidr(c.cidr), cidr),
      );
      if (clash)
        report(doc, cidrPath, `${node.podCIDR} overlaps ${clash.cidr} of node ${clash.owner}`);
      else cidrOwners.push({ cidr: node.podCIDR, owner: node.name });
    }
  }
}

function addressIndex(object: Obj): number {
  const i = asArr(asObj(object.status)?.addresses).findIndex(
    (a) => asObj(a)?.type === 'InternalIP',
  );
  return i < 0 ? 0 : i;
}

function checkServiceAllocations(
  docs: readonly ValidDoc[],
  context: ValidationContext,
  report: Report,
): void {
  const serviceDocs = docs.filter(
    (d): d is ValidDoc & { normalized: { kind: 'Service'; value: Service } } =>
      d.normalized.kind === 'Service',
  );
  const keyOf = (svc: Service): string => `${svc.namespace}/${svc.name}`;
  const applying = new Set(serviceDocs.map((d) => keyOf(d.normalized.value)));
  const ipOwner = new Map<string, string>();
  const nodePortOwner = new Map<number, string>();
  const lbOwner = new Map<string, string>();
  const claim = (svc: Service): void => {
    if (isAllocatedIP(svc.clusterIP)) ipOwner.set(svc.clusterIP, keyOf(svc));
    for (const p of svc.ports)
      if (p.nodePort !== undefined) nodePortOwner.set(p.nodePort, keyOf(svc));
    if (svc.loadBalancerIP !== undefined) lbOwner.set(svc.loadBalancerIP, keyOf(svc));
  };
  // What is held already: services not being re-applied, and what re-applied ones keep.
  for (const svc of context.state?.services.values() ?? []) {
    if (!applying.has(keyOf(svc))) claim(svc);
  }
  for (const doc of serviceDocs) {
    const svc = doc.normalized.value;
    const existing = context.state?.services.get(keyOf(svc));
    const ip = keptClusterIP(existing, svc);
    if (ip !== undefined && isAllocatedIP(ip)) ipOwner.set(ip, keyOf(svc));
    for (const p of svc.ports) {
      const np = keptNodePort(existing, svc, p);
      if (np !== undefined) nodePortOwner.set(np, keyOf(svc));
    }
    const lb = keptLoadBalancerIP(existing, svc);
    if (lb !== undefined) lbOwner.set(lb, keyOf(svc));
  }
  // What the manifests ask for, in order.
  for (const doc of serviceDocs) {
    const svc = doc.normalized.value;
    const key = keyOf(svc);
    const existing = context.state?.services.get(key);
    const changed = clusterIPChange(existing, svc);
    if (changed !== undefined) {
      report(doc, 'spec.clusterIP', `field is immutable (the service has ${changed})`);
    } else if (isAllocatedIP(svc.clusterIP)) {
      const owner = ipOwner.get(svc.clusterIP);
      if (owner !== undefined && owner !== key)
        report(doc, 'spec.clusterIP', `${svc.clusterIP} is already allocated to service ${owner}`);
      else ipOwner.set(svc.clusterIP, key);
    }
    svc.ports.forEach((p, i) => {
      if (p.nodePort === undefined) return;
      const owner = nodePortOwner.get(p.nodePort);
      if (owner !== undefined && owner !== key) {
        report(
          doc,
          `spec.ports[${i}].nodePort`,
          `${p.nodePort} is already allocated to service ${owner}`,
        );
      } else nodePortOwner.set(p.nodePort, key);
    });
    if (svc.loadBalancerIP !== undefined) {
      const owner = lbOwner.get(svc.loadBalancerIP);
      if (owner !== undefined && owner !== key)
        report(
          doc,
          'spec.loadBalancerIP',
          `${svc.loadBalancerIP} is already allocated to service ${owner}`,
        );
      else lbOwner.set(svc.loadBalancerIP, key);
    }
  }
}

/** TrafficOptimization / CiliumNetworkPolicy tcp: the algorithms must be the kernel's. */
function checkCongestionControls(o: Obj, r: Reporter, c: ValidationContext): void {
  if (!c.congestionControls) return;
  for (const p of congestionControlProblems(o, c.congestionControls)) r.add(p.path, p.message);
}
