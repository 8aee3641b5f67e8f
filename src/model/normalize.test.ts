import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_ADDRESSING } from './addressing.js';
import { splitCommandLine } from './command.js';
import { parseManifestText } from './manifests.js';
import type { NormalizedObject } from './normalize.js';
import { validateManifests } from './validate.js';

function normalized(yaml: string): NormalizedObject[] {
  return validateManifests(parseManifestText(yaml, 'n.yaml'), {
    addressing: DEFAULT_ADDRESSING,
  }).map((d) => d.normalized);
}

type ValueOf<K> = Extract<NormalizedObject, { kind: K }>['value'];

function only<K extends NormalizedObject['kind']>(yaml: string, kind: K): ValueOf<K> {
  const [n] = normalized(yaml);
  assert.equal(n?.kind, kind);
  return (n as Extract<NormalizedObject, { kind: K }>).value as ValueOf<K>;
}

describe('normalize: Kubernetes defaults', () => {
  it('Service: namespace, type, protocol, targetPort, name, affinity, policies', () => {
    const svc = only(
      'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n',
      'Service',
    );
    assert.deepEqual(svc, {
      namespace: 'default',
      name: 'web',
      labels: {},
      annotations: {},
      type: 'ClusterIP',
      clusterIP: '',
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }],
      externalIPs: [],
      sessionAffinity: 'None',
      affinityTimeoutSeconds: 10800,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      publishNotReadyAddresses: false,
    });
  });

  it('Service: explicit values are kept; an empty selector means no selector', () => {
    const svc = only(
      `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  type: LoadBalancer
  selector: {}
  loadBalancerIP: 198.19.128.9
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  externalTrafficPolicy: Local
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: dns, nodePort: 30053}
`,
      'Service',
    );
    assert.equal(svc.selector, undefined);
    assert.equal(svc.loadBalancerIP, '198.19.128.9');
    assert.equal(svc.affinityTimeoutSeconds, 60);
    assert.equal(svc.externalTrafficPolicy, 'Local');
    assert.deepEqual(svc.ports, [
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns', nodePort: 30053 },
    ]);
  });

  it('Pod: ready by default, sluice.io/ready "false", virtual, terminating', () => {
    const pods = normalized(`apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: b
  annotations: {sluice.io/ready: "false", sluice.io/virtual: "true"}
  deletionTimestamp: "2024-01-01T00:00:00Z"
spec: {containers: [{name: c, image: i}]}
`);
    const [a, b] = pods.map((p) => (p.kind === 'Pod' ? p.value : undefined));
    assert.deepEqual(a?.conditions, { ready: true, terminating: false });
    assert.equal(a?.virtual, false);
    assert.deepEqual(a?.containers[0]?.ports, [{ containerPort: 80, protocol: 'TCP' }]);
    assert.deepEqual(b?.conditions, { ready: false, terminating: true });
    assert.equal(b?.virtual, true);
  });

  it('container command: annotation (first or named container), else command + args', () => {
    const pod = only(
      `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    sluice.io/command: "server --port 8080 --name 'my pod'"
    sluice.io/command.side: sidecar -v
spec:
  containers:
  - {name: main, image: i, command: [ignored]}
  - {name: side, image: i}
  - {name: third, image: i, command: [sh, -c], args: [echo hi]}
  - {name: fourth, image: redis, args: [--port, "7000"]}
`,
      'Pod',
    );
    assert.deepEqual(
      pod.containers.map((c) => [c.name, c.command, c.args]),
      [
        ['main', ['server', '--port', '8080', '--name', 'my pod'], undefined],
        ['side', ['sidecar', '-v'], undefined],
        ['third', ['sh', '-c', 'echo hi'], undefined],
        ['fourth', undefined, ['--port', '7000']],
      ],
    );
  });

  it('Deployment: replicas 1, selector matchLabels, template', () => {
    const d = only(
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {sluice.io/ready: "false"}}
    spec: {nodeName: node-1, containers: [{name: web, image: echo}]}
`,
      'Deployment',
    );
    assert.equal(d.replicas, 1);
    assert.deepEqual(d.selector, { app: 'web' });
    assert.deepEqual(d.template, {
      labels: { app: 'web' },
      annotations: { 'sluice.io/ready': 'false' },
      containers: [{ name: 'web', image: 'echo', ports: [] }],
      nodeName: 'node-1',
    });
  });

  it('EndpointSlice: kube-proxy reading of nil conditions, port defaults, targetRef', () => {
    const s = only(
      `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}
addressType: IPv4
ports: [{port: 8443}]
endpoints:
- addresses: [198.18.200.1]
- addresses: [198.18.200.2]
  conditions: {ready: false, terminating: true}
  nodeName: node-0
  targetRef: {kind: Pod, name: x}
`,
      'EndpointSlice',
    );
    assert.equal(s.serviceName, 'ext');
    assert.equal(s.managed, false);
    assert.deepEqual(s.ports, [{ name: '', protocol: 'TCP', port: 8443 }]);
    assert.deepEqual(s.endpoints, [
      {
        addresses: ['198.18.200.1'],
        conditions: { ready: true, serving: true, terminating: false },
      },
      {
        addresses: ['198.18.200.2'],
        conditions: { ready: false, serving: true, terminating: true },
        nodeName: 'node-0',
        targetRef: 'default/x',
      },
    ]);
  });

  it('Namespace and Node: the labels the API server and kubelet add', () => {
    assert.deepEqual(
      only('apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n', 'Namespace'),
      {
        name: 'shop',
        labels: { 'kubernetes.io/metadata.name': 'shop' },
      },
    );
    const node = only(
      `apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 198.18.20.0/24}
status: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 198.18.0.20}]}
`,
      'Node',
    );
    assert.deepEqual(node, {
      name: 'n1',
      labels: { 'kubernetes.io/hostname': 'n1' },
      ip: '198.18.0.20',
      podCIDR: '198.18.20.0/24',
    });
  });

  it('CiliumNetworkPolicy: spec and specs kept as given', () => {
    const p = only(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c}
specs:
- endpointSelector: {}
  ingress: [{fromEntities: [cluster]}]
`,
      'CiliumNetworkPolicy',
    );
    assert.equal(p.kind, 'CiliumNetworkPolicy');
    assert.equal(p.spec, undefined);
    assert.deepEqual(p.specs, [{ endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }] }]);
  });
});

describe('splitCommandLine', () => {
  it('splits words like a POSIX shell, without expansion', () => {
    assert.deepEqual(splitCommandLine('  a  b\tc\n d '), ['a', 'b', 'c', 'd']);
    assert.deepEqual(splitCommandLine(`sh -c 'echo $HOME | wc' "a \\"b\\" \\$x \\n"`), [
      'sh',
      '-c',
      'echo $HOME | wc',
      'a "b" $x \\n',
    ]);
    assert.deepEqual(splitCommandLine(`a'b'"c" '' x\\ y line\\\ncont`), [
      'abc',
      '',
      'x y',
      'linecont',
    ]);
    assert.deepEqual(splitCommandLine('redis-server --port 6379 > /dev/null'), [
      'redis-server',
      '--port',
      '6379',
      '>',
      '/dev/null',
    ]);
  });

  it('rejects unterminated quotes, a trailing backslash and empty commands', () => {
    assert.throws(() => splitCommandLine('a "b'), /unterminated double quote at character 3/);
    assert.throws(() => splitCommandLine("a 'b"), /unterminated single quote/);
    assert.throws(() => splitCommandLine('a \\'), /trailing backslash/);
    assert.throws(() => splitCommandLine('   '), /empty command/);
  });
});
