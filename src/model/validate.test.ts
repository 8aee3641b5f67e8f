import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_ADDRESSING } from './addressing.js';
import { ManifestError, formatProblem } from './errors.js';
import { parseManifestText } from './manifests.js';
import { applyObjects, emptyState } from './state.js';
import { checkManifests, validateManifests } from './validate.js';
import type { ValidationContext } from './validate.js';

/** The formatted problems of a YAML text, in order. */
function problems(
  yaml: string,
  context: Partial<ValidationContext> = {},
  file = 'm.yaml',
): string[] {
  const docs = parseManifestText(yaml, file);
  return checkManifests(docs, { addressing: DEFAULT_ADDRESSING, ...context }).problems.map(
    formatProblem,
  );
}

const svc = (spec: string, name = 'web') =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n${spec}`;
const pod = (spec: string, name = 'p', annotations = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n${annotations}spec:\n${spec}`;
const deployment = (replicas: string, labels = 'app: web', selector = 'app: web') => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {${selector}}}
  template:
    metadata: {labels: {${labels}}}
    spec:
      containers: [{name: web, image: echo}]
`;

describe('validation: schemas (kubernetes-models)', () => {
  it('reports a type error with the dotted field path and file#index', () => {
    const text = `${svc('  ports: [{port: 80}]', 'ok')}\n---\n${svc('  ports:\n  - port: "80"')}`;
    assert.deepEqual(problems(text, {}, 'web.yaml'), [
      'web.yaml#1 Service default/web: spec.ports[0].port: must be integer',
    ]);
  });

  it('merges IntOrString mismatches and names enum values and missing fields', () => {
    assert.deepEqual(problems(svc('  type: Balanced\n  ports: [{port: 80, targetPort: true}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].targetPort: must be string or integer',
      'm.yaml#0 Service default/web: spec.type: must be one of: ClusterIP, ExternalName, LoadBalancer, NodePort',
    ]);
    assert.deepEqual(problems(pod('  nodeName: node-0')), [
      'm.yaml#0 Pod default/p: spec.containers: required',
    ]);
  });

  it('checks apiVersion against the kind', () => {
    assert.deepEqual(problems(deployment('1').replace('apps/v1', 'apps/v1beta1')), [
      'm.yaml#0 Deployment shop/web: apiVersion: must be one of: apps/v1',
    ]);
  });

  it('rejects unknown kinds and documents that are not objects', () => {
    assert.deepEqual(problems('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n- a\n'), [
      'm.yaml#0 ConfigMap c: kind: unsupported kind "ConfigMap"; sluice supports Namespace, Node, Pod, Service, Deployment, EndpointSlice, NetworkPolicy, CiliumNetworkPolicy, TrafficOptimization',
      'm.yaml#1: expected a Kubernetes object (a mapping with apiVersion, kind and metadata)',
    ]);
  });

  it('rejects unknown fields in the parts sluice reads (typos would be silently ignored)', () => {
    assert.deepEqual(problems(svc('  ports: [{port: 80, tragetPort: 8080}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].tragetPort: unknown field',
    ]);
  });
});

describe('validation: sluice rules', () => {
  it('port numbers are 1-65535', () => {
    assert.deepEqual(problems(svc('  ports: [{port: 70000, targetPort: 0}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].port: must be between 1 and 65535, got 70000',
      'm.yaml#0 Service default/web: spec.ports[0].targetPort: must be between 1 and 65535, got 0',
    ]);
    assert.deepEqual(
      problems(pod('  containers: [{name: c, image: i, ports: [{containerPort: 0}]}]')),
      [
        'm.yaml#0 Pod default/p: spec.containers[0].ports[0].containerPort: must be between 1 and 65535, got 0',
      ],
    );
  });

  it('nodePort must be inside the node port range and only on NodePort/LoadBalancer', () => {
    assert.deepEqual(problems(svc('  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].nodePort: must be within the node port range 30000-32767, got 8080',
    ]);
    assert.deepEqual(
      problems(svc('  ports: [{port: 80, nodePort: 30001}]'), {
        addressing: { ...DEFAULT_ADDRESSING, nodePortRange: { min: 30000, max: 30000 } },
      }),
      [
        'm.yaml#0 Service default/web: spec.ports[0].nodePort: may not be used when type is ClusterIP',
      ],
    );
  });

  it('a nodePort may not be used by two services, in the manifests or in the state', () => {
    const a = svc('  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]', 'a');
    const b = svc('  type: NodePort\n  ports: [{port: 81, nodePort: 30080}]', 'b');
    assert.deepEqual(problems(`${a}\n---\n${b}`), [
      'm.yaml#1 Service default/b: spec.ports[0].nodePort: 30080 is already allocated to service default/a',
    ]);
    const state = applyObjects(emptyState(), parseManifestText(a, 'a.yaml'));
    assert.deepEqual(problems(b, { state }, 'b.yaml'), [
      'b.yaml#0 Service default/b: spec.ports[0].nodePort: 30080 is already allocated to service default/a',
    ]);
    // Re-applying the owner is fine.
    assert.deepEqual(problems(a, { state }), []);
  });

  it('a NodePort allocated earlier stays with its service when it is re-applied', () => {
    const a = svc('  type: NodePort\n  ports: [{port: 80}]', 'a');
    const state = applyObjects(emptyState(), parseManifestText(a, 'a.yaml'));
    const allocated = state.services.get('default/a')?.ports[0]?.nodePort;
    assert.equal(allocated, 30000);
    const b = svc('  type: NodePort\n  ports: [{port: 81, nodePort: 30000}]', 'b');
    assert.deepEqual(problems(`${a}\n---\n${b}`, { state }), [
      'm.yaml#1 Service default/b: spec.ports[0].nodePort: 30000 is already allocated to service default/a',
    ]);
  });

  it('replicas must not be negative; the selector must match the template', () => {
    assert.deepEqual(problems(deployment('-1')), [
      'm.yaml#0 Deployment shop/web: spec.replicas: must be >= 0, got -1',
    ]);
    assert.deepEqual(problems(deployment('2', 'app: api')), [
      'm.yaml#0 Deployment shop/web: spec.template.metadata.labels: `selector` does not match template `labels`',
    ]);
  });

  it('container port names are valid IANA service names, unique in the pod', () => {
    const spec = `  containers:
  - name: a
    image: i
    ports: [{name: http, containerPort: 80}, {name: a-very-long-port-name, containerPort: 81}]
  - name: b
    image: i
    ports: [{name: http, containerPort: 8080}, {name: Metrics, containerPort: 9090}, {name: "8080", containerPort: 8081}]
`;
    assert.deepEqual(problems(pod(spec)), [
      'm.yaml#0 Pod default/p: spec.containers[0].ports[1].name: must be no more than 15 characters (got "a-very-long-port-name")',
      'm.yaml#0 Pod default/p: spec.containers[1].ports[0].name: duplicate port name "http" in the pod (also spec.containers[0].ports[0])',
      'm.yaml#0 Pod default/p: spec.containers[1].ports[1].name: must contain only lowercase letters, digits and \'-\', starting and ending with a letter or digit (got "Metrics")',
      'm.yaml#0 Pod default/p: spec.containers[1].ports[2].name: must contain at least one letter (got "8080")',
    ]);
  });

  it('a targetPort name must be a valid port name', () => {
    assert.deepEqual(problems(svc('  ports: [{port: 80, targetPort: web_http}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].targetPort: must be a port number or a valid port name: must contain only lowercase letters, digits and \'-\', starting and ending with a letter or digit (got "web_http")',
    ]);
  });

  it('clusterIP must be inside the service CIDR, not reserved, not taken, or None', () => {
    const outside = svc('  clusterIP: 10.96.0.10\n  ports: [{port: 80}]');
    assert.deepEqual(problems(outside), [
      'm.yaml#0 Service default/web: spec.clusterIP: 10.96.0.10 is not inside the service CIDR 198.19.0.0/17 (or use "None" for a headless service)',
    ]);
    assert.deepEqual(problems(svc('  clusterIP: 198.19.0.1\n  ports: [{port: 80}]')), [
      'm.yaml#0 Service default/web: spec.clusterIP: 198.19.0.1 is reserved (the first address of the service CIDR)',
    ]);
    assert.deepEqual(problems(svc('  clusterIP: None\n  ports: [{port: 80}]')), []);
    assert.deepEqual(problems(svc('  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]')), [
      'm.yaml#0 Service default/web: spec.clusterIP: may not be "None" for type NodePort',
    ]);
    const a = svc('  clusterIP: 198.19.0.7\n  ports: [{port: 80}]', 'a');
    const b = svc('  clusterIP: 198.19.0.7\n  ports: [{port: 80}]', 'b');
    assert.deepEqual(problems(`${a}\n---\n${b}`), [
      'm.yaml#1 Service default/b: spec.clusterIP: 198.19.0.7 is already allocated to service default/a',
    ]);
  });

  it('a service keeps its ClusterIP: changing it is an immutable-field error', () => {
    const state = applyObjects(emptyState(), parseManifestText(svc('  ports: [{port: 80}]'), 'a'));
    assert.equal(state.services.get('default/web')?.clusterIP, '198.19.0.2');
    assert.deepEqual(problems(svc('  clusterIP: 198.19.0.9\n  ports: [{port: 80}]'), { state }), [
      'm.yaml#0 Service default/web: spec.clusterIP: field is immutable (the service has 198.19.0.2)',
    ]);
  });

  it('selector and metadata labels must be valid label keys and values', () => {
    const text = `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {"app.kubernetes.io/name": "-web"}
spec:
  selector: {"bad key": web}
  ports: [{port: 80}]
`;
    assert.deepEqual(problems(text), [
      "m.yaml#0 Service default/web: metadata.labels[\"app.kubernetes.io/name\"]: invalid label value: must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got \"-web\")",
      "m.yaml#0 Service default/web: spec.selector[\"bad key\"]: invalid label key: name part must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got \"bad key\")",
    ]);
  });

  it('an EndpointSlice needs the kubernetes.io/service-name label', () => {
    const text = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [198.18.16.9]}]
`;
    assert.deepEqual(problems(text), [
      'm.yaml#0 EndpointSlice default/s: metadata.labels["kubernetes.io/service-name"]: required: the name of the Service these endpoints belong to',
    ]);
  });

  it('SCTP is rejected with the reason', () => {
    assert.deepEqual(problems(svc('  ports: [{port: 80, protocol: SCTP}]')), [
      'm.yaml#0 Service default/web: spec.ports[0].protocol: SCTP is not supported by the sluice lab (TCP and UDP only)',
    ]);
  });

  it('service port names: required with several ports, unique, DNS labels', () => {
    assert.deepEqual(
      problems(svc('  ports: [{port: 80}, {name: a, port: 81}, {name: a, port: 82}]')),
      [
        'm.yaml#0 Service default/web: spec.ports[0].name: required when the service has more than one port',
        'm.yaml#0 Service default/web: spec.ports[2].name: duplicate port name "a" (also spec.ports[1])',
      ],
    );
  });

  it('externalTrafficPolicy only for externally accessible services', () => {
    assert.deepEqual(problems(svc('  externalTrafficPolicy: Local\n  ports: [{port: 80}]')), [
      'm.yaml#0 Service default/web: spec.externalTrafficPolicy: may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)',
    ]);
    assert.deepEqual(
      problems(
        svc('  externalTrafficPolicy: Local\n  externalIPs: [198.18.250.1]\n  ports: [{port: 80}]'),
      ),
      [],
    );
  });

  it('pods must name existing nodes (when the caller says which exist)', () => {
    const text = pod('  nodeName: node-9\n  containers: [{name: c, image: i}]');
    assert.deepEqual(problems(text, { nodeNames: ['node-0', 'node-1'] }), [
      'm.yaml#0 Pod default/p: spec.nodeName: node "node-9" does not exist',
    ]);
  });

  it('the sluice.io annotations are checked', () => {
    const annotations =
      '  annotations:\n    sluice.io/ready: "maybe"\n    sluice.io/command: "sh -c \'echo hi"\n';
    assert.deepEqual(problems(pod('  containers: [{name: c, image: i}]', 'p', annotations)), [
      'm.yaml#0 Pod default/p: metadata.annotations["sluice.io/ready"]: must be "true" or "false", got "maybe"',
      'm.yaml#0 Pod default/p: metadata.annotations["sluice.io/command"]: invalid command line: unterminated single quote at character 7',
    ]);
  });

  it('duplicate objects are rejected', () => {
    const a = pod('  containers: [{name: c, image: i}]');
    assert.deepEqual(problems(`${a}\n---\n${a}`, {}, 'p.yaml'), [
      'p.yaml#1 Pod default/p: metadata.name: duplicate Pod (also p.yaml#0)',
    ]);
  });

  it('NetworkPolicy: selectors, ipBlock and ports', () => {
    const text = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In}]}
  ingress:
  - from: [{ipBlock: {cidr: 198.18.0.0/15, except: [10.0.0.0/8]}}]
    ports: [{protocol: SCTP, port: 80}, {port: 80, endPort: 70}]
`;
    assert.deepEqual(problems(text), [
      'm.yaml#0 NetworkPolicy shop/np: spec.podSelector.matchExpressions[0].values: must be non-empty when operator is In',
      'm.yaml#0 NetworkPolicy shop/np: spec.ingress[0].from[0].ipBlock.except[0]: must be strictly inside 198.18.0.0/15',
      'm.yaml#0 NetworkPolicy shop/np: spec.ingress[0].ports[0].protocol: SCTP is not supported by the sluice lab (TCP and UDP only)',
      'm.yaml#0 NetworkPolicy shop/np: spec.ingress[0].ports[1].endPort: must be >= port (80)',
    ]);
  });
});

describe('validation: CiliumNetworkPolicy (zod)', () => {
  const cnp = (spec: string) =>
    `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c, namespace: shop}\nspec:\n${spec}`;

  it('accepts L7 HTTP and l7proto rules', () => {
    const spec = `  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": shop}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/v1/.*", headers: ["X-Token: a"]}]
  - fromCIDR: [198.18.0.0/15]
    toPorts:
    - ports: [{port: "6379"}]
      rules: {l7proto: redis, l7: [{command: GET}]}
  egressDeny:
  - toEntities: [world]
`;
    assert.deepEqual(problems(cnp(spec)), []);
  });

  it('reports misspelt fields, missing selectors, numeric ports and bad entities', () => {
    const spec = `  ingress:
  - fromEndpoint: [{matchLabels: {app: web}}]
    fromEntities: [everywhere]
    toPorts:
    - ports: [{port: 80}]
  ingressDeny:
  - toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]
`;
    assert.deepEqual(problems(cnp(spec)), [
      'm.yaml#0 CiliumNetworkPolicy shop/c: spec.ingress[0].fromEntities[0]: must be one of: all, world, world-ipv4, world-ipv6, cluster, host, remote-node, kube-apiserver, ingress, init, health, unmanaged, none',
      'm.yaml#0 CiliumNetworkPolicy shop/c: spec.ingress[0].toPorts[0].ports[0].port: must be a string (quote numbers: port: "80")',
      'm.yaml#0 CiliumNetworkPolicy shop/c: spec.ingress[0].fromEndpoint: unknown field',
      'm.yaml#0 CiliumNetworkPolicy shop/c: spec.ingressDeny[0].toPorts[0].rules: unknown field',
      'm.yaml#0 CiliumNetworkPolicy shop/c: spec.endpointSelector: exactly one of endpointSelector and nodeSelector is required',
    ]);
  });
});

describe('validateManifests', () => {
  it('collects every problem of every document into one ManifestError', () => {
    const text = [
      svc('  ports: [{port: 0}]', 'a'),
      pod('  containers: [{name: c, image: i, ports: [{containerPort: 80, protocol: SCTP}]}]'),
      deployment('-2'),
      'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n',
    ].join('\n---\n');
    const docs = parseManifestText(text, 'all.yaml');
    assert.throws(
      () => validateManifests(docs, { addressing: DEFAULT_ADDRESSING }),
      (err: unknown) => {
        assert.ok(err instanceof ManifestError);
        assert.deepEqual(
          err.problems.map((p) => [p.index, p.kind, p.namespace, p.name, p.path]),
          [
            [0, 'Service', 'default', 'a', 'spec.ports[0].port'],
            [1, 'Pod', 'default', 'p', 'spec.containers[0].ports[0].protocol'],
            [2, 'Deployment', 'shop', 'web', 'spec.replicas'],
            [3, 'Secret', '', 's', 'kind'],
          ],
        );
        assert.equal(err.message.split('\n').length, 4);
        assert.equal(
          err.message.split('\n')[0],
          'all.yaml#0 Service default/a: spec.ports[0].port: must be between 1 and 65535, got 0',
        );
        return true;
      },
    );
  });

  it('returns the valid documents normalized when there is no problem', () => {
    const docs = parseManifestText(svc('  ports: [{port: 80}]'), 'ok.yaml');
    const [valid] = validateManifests(docs, { addressing: DEFAULT_ADDRESSING });
    assert.equal(valid?.kind, 'Service');
    assert.equal(valid?.normalized.kind, 'Service');
  });
});
