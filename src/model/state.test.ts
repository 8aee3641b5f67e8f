import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_ADDRESSING } from './addressing.js';
import { ManifestError, ModelError } from './errors.js';
import { parseManifestText } from './manifests.js';
import { stateToJSON } from './serialize.js';
import {
  applyObjects,
  defaultNodes,
  deleteObjects,
  emptyState,
  refsOf,
  replicaName,
  setPodConditions,
} from './state.js';
import type { ApplyOptions } from './state.js';
import type { ClusterState, Pod } from './types.js';

function apply(state: ClusterState, yaml: string, options: ApplyOptions = { nodes: 2 }) {
  return applyObjects(state, parseManifestText(yaml, 'test.yaml'), options);
}

const deployment = (name: string, replicas: number, extra = '', image = 'echo') => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      ${extra}
      containers: [{name: c, image: ${image}, ports: [{name: http, containerPort: 8080}]}]
`;
const bare = (name: string, extra = '') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: bare}}
spec:
  ${extra}
  containers: [{name: c, image: echo}]
`;
const service = (name: string, spec: string) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
${spec}
`;
const docs = (...parts: string[]) => parts.join('\n---\n');

const pods = (state: ClusterState): Pod[] => [...state.pods.values()];
const placement = (state: ClusterState) =>
  Object.fromEntries(pods(state).map((p) => [p.name, `${p.nodeName} ${p.ip}`]));

describe('state: nodes and namespaces', () => {
  it('starts with the default namespace only', () => {
    const s = emptyState();
    assert.deepEqual([...s.namespaces.keys()], ['default']);
    assert.equal(s.nodes.size, 0);
  });

  it('default nodes: node-i at fabric .10+i with the i-th /24 of the pod range', () => {
    assert.deepEqual(defaultNodes(2), [
      {
        name: 'node-0',
        labels: { 'kubernetes.io/hostname': 'node-0' },
        ip: '198.18.0.10',
        podCIDR: '198.18.16.0/24',
      },
      {
        name: 'node-1',
        labels: { 'kubernetes.io/hostname': 'node-1' },
        ip: '198.18.0.11',
        podCIDR: '198.18.17.0/24',
      },
    ]);
    assert.throws(
      () => defaultNodes(17, DEFAULT_ADDRESSING),
      (e: unknown) => e instanceof ModelError && e.code === 'BAD_OPTIONS',
    );
  });

  it('the nodes option applies only to a cluster that would have no node', () => {
    const s = apply(emptyState(), bare('a'), { nodes: 3 });
    assert.deepEqual([...s.nodes.keys()], ['node-0', 'node-1', 'node-2']);
    const again = apply(s, bare('b'), { nodes: 5 });
    assert.equal(again.nodes.size, 3);
    const manifestNodes = apply(
      emptyState(),
      docs(
        'apiVersion: v1\nkind: Node\nmetadata: {name: big}\nspec: {podCIDR: 198.18.24.0/22}',
        'apiVersion: v1\nkind: Node\nmetadata: {name: small}',
      ),
      { nodes: 2 },
    );
    assert.deepEqual(
      [...manifestNodes.nodes.values()].map((n) => [n.name, n.ip, n.podCIDR]),
      [
        ['big', '198.18.0.10', '198.18.24.0/22'],
        ['small', '198.18.0.11', '198.18.16.0/24'],
      ],
    );
  });

  it('creates namespaces implicitly', () => {
    const s = apply(emptyState(), bare('a').replace('name: a,', 'name: a, namespace: shop,'));
    assert.deepEqual([...s.namespaces.keys()], ['default', 'shop']);
    assert.deepEqual(s.namespaces.get('shop')?.labels, { 'kubernetes.io/metadata.name': 'shop' });
  });
});

describe('state: deployments', () => {
  it('expands replicas into deterministic pods owned by the deployment', () => {
    const s = apply(emptyState(), deployment('web', 3));
    const names = pods(s).map((p) => p.name);
    assert.equal(names.length, 3);
    for (const name of names)
      assert.match(name, /^web-[b-df-hj-np-tv-z2456789]{5}-[b-df-hj-np-tv-z2456789]{5}$/);
    const hashes = new Set(names.map((n) => n.split('-')[1]));
    assert.equal(hashes.size, 1, 'one template hash');
    const [hash] = hashes;
    for (const p of pods(s)) {
      assert.deepEqual(p.labels, { app: 'web', 'pod-template-hash': hash });
      assert.deepEqual(p.owner, { kind: 'Deployment', name: 'web' });
      assert.deepEqual(p.conditions, { ready: true, terminating: false });
    }
    const d = s.deployments.get('default/web');
    assert.ok(d);
    assert.deepEqual(new Set(names), new Set([0, 1, 2].map((i) => replicaName(d, i))));
  });

  it('re-applying the same manifests changes nothing', () => {
    const text = docs(
      deployment('web', 3),
      service(
        'web',
        '  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]',
      ),
    );
    const s1 = apply(emptyState(), text);
    const s2 = apply(s1, text);
    assert.deepEqual(stateToJSON(s2), stateToJSON(s1));
  });

  it('scaling up adds the next indices and keeps the existing pods as they are', () => {
    const s3 = apply(emptyState(), deployment('web', 3));
    const s5 = apply(s3, deployment('web', 5));
    const d = s5.deployments.get('default/web');
    assert.ok(d);
    assert.equal(s5.pods.size, 5);
    for (const [key, pod] of s3.pods) assert.deepEqual(s5.pods.get(key), pod);
    assert.ok(s5.pods.has(`default/${replicaName(d, 3)}`));
    assert.ok(s5.pods.has(`default/${replicaName(d, 4)}`));
  });

  it('scaling down removes the highest indices; scaling back is idempotent', () => {
    const s5 = apply(emptyState(), deployment('web', 5));
    const s2 = apply(s5, deployment('web', 2));
    const d = s2.deployments.get('default/web');
    assert.ok(d);
    assert.deepEqual(
      [...s2.pods.keys()].sort(),
      [replicaName(d, 0), replicaName(d, 1)].map((n) => `default/${n}`).sort(),
    );
    for (const [key, pod] of s2.pods) assert.deepEqual(pod, s5.pods.get(key));
    const s0 = apply(s2, deployment('web', 0));
    assert.equal(s0.pods.size, 0);
  });

  it('a changed template replaces the pods, with fresh addresses', () => {
    const s1 = apply(emptyState(), deployment('web', 2));
    const s2 = apply(s1, deployment('web', 2, '', 'echo:v2'));
    const before = new Set(pods(s1).map((p) => p.name));
    const after = pods(s2);
    assert.equal(after.length, 2);
    for (const p of after) assert.ok(!before.has(p.name), `${p.name} is new`);
    const oldIPs = new Set(pods(s1).map((p) => p.ip));
    for (const p of after) assert.ok(!oldIPs.has(p.ip), `${p.ip} not reused in the same change`);
  });

  it('a deleted replica is recreated; deleting the deployment deletes its pods', () => {
    const s1 = apply(emptyState(), deployment('web', 2));
    const victim = pods(s1)[0];
    assert.ok(victim);
    const s2 = deleteObjects(s1, [{ kind: 'Pod', name: victim.name }]);
    assert.deepEqual([...s2.pods.keys()], [...s1.pods.keys()]);
    const s3 = deleteObjects(s2, [{ kind: 'Deployment', namespace: 'default', name: 'web' }]);
    assert.equal(s3.pods.size, 0);
    assert.equal(s3.deployments.size, 0);
  });
});

describe('state: scheduling and IPAM', () => {
  it('spreads pods to the node with the fewest pods, ties by name', () => {
    const s = apply(
      emptyState(),
      docs(bare('a'), bare('b'), bare('c'), bare('d', 'nodeName: node-0'), bare('e')),
    );
    assert.deepEqual(placement(s), {
      a: 'node-0 198.18.16.2',
      b: 'node-1 198.18.17.2',
      c: 'node-0 198.18.16.3',
      d: 'node-0 198.18.16.4',
      e: 'node-1 198.18.17.3',
    });
  });

  it('pinned pods count: a deployment then goes to the emptier nodes', () => {
    const s1 = apply(
      emptyState(),
      docs(bare('p1', 'nodeName: node-0'), bare('p2', 'nodeName: node-0')),
      { nodes: 3 },
    );
    const s2 = apply(s1, deployment('web', 2), { nodes: 3 });
    const nodes = pods(s2)
      .filter((p) => p.owner)
      .map((p) => p.nodeName)
      .sort();
    assert.deepEqual(nodes, ['node-1', 'node-2']);
  });

  it('addresses are stable for a pod and freed when it is deleted', () => {
    const s1 = apply(
      emptyState(),
      docs(
        bare('a', 'nodeName: node-0'),
        bare('b', 'nodeName: node-0'),
        bare('c', 'nodeName: node-0'),
      ),
    );
    assert.deepEqual(placement(s1), {
      a: 'node-0 198.18.16.2',
      b: 'node-0 198.18.16.3',
      c: 'node-0 198.18.16.4',
    });
    const s2 = deleteObjects(s1, [{ kind: 'Pod', name: 'b' }]);
    const s3 = apply(s2, bare('d', 'nodeName: node-0'));
    assert.equal(s3.pods.get('default/d')?.ip, '198.18.16.3', 'the freed address is reused');
    assert.equal(s3.pods.get('default/a')?.ip, '198.18.16.2');
    assert.equal(s3.pods.get('default/c')?.ip, '198.18.16.4');
    assert.notEqual(s3.pods.get('default/d')?.uid, s1.pods.get('default/b')?.uid);
  });

  it('a full node is an error naming the pod', () => {
    const nodes = [{ name: 'tiny', labels: {}, ip: '198.18.0.10', podCIDR: '198.18.16.0/30' }];
    const s1 = apply(emptyState(), bare('a'), { nodes });
    assert.equal(s1.pods.get('default/a')?.ip, '198.18.16.2');
    assert.throws(
      () => apply(s1, bare('b'), { nodes }),
      /test\.yaml#0 Pod default\/b: no node has a free pod address/,
    );
  });

  it('a re-applied pod keeps node, address and conditions; the ready annotation still counts', () => {
    const s1 = apply(emptyState(), bare('a'));
    const s2 = setPodConditions(s1, 'default/a', { ready: false });
    const s3 = apply(s2, bare('a'));
    assert.deepEqual(s3.pods.get('default/a'), s2.pods.get('default/a'));
    const withAnnotation = bare('a').replace(
      'labels: {app: bare}',
      'labels: {app: bare}, annotations: {sluice.io/ready: "true"}',
    );
    const s4 = apply(s3, withAnnotation);
    assert.equal(s4.pods.get('default/a')?.conditions.ready, true);
    assert.equal(s4.pods.get('default/a')?.ip, s1.pods.get('default/a')?.ip);
  });

  it('a pod cannot move to another node', () => {
    const s1 = apply(emptyState(), bare('a', 'nodeName: node-0'));
    assert.throws(
      () => apply(s1, bare('a', 'nodeName: node-1')),
      /spec\.nodeName: field is immutable \(the pod runs on node-0\)/,
    );
  });

  it('deleting a node deletes its pods; replicas come back elsewhere', () => {
    const s1 = apply(emptyState(), docs(deployment('web', 2), bare('a', 'nodeName: node-1')));
    const s2 = deleteObjects(s1, [{ kind: 'Node', name: 'node-1' }]);
    assert.equal(s2.pods.has('default/a'), false);
    const replicas = pods(s2).filter((p) => p.owner);
    assert.equal(replicas.length, 2);
    for (const p of replicas) assert.equal(p.nodeName, 'node-0');
  });
});

describe('state: service allocations', () => {
  const ports = '  ports: [{port: 80}]';

  it('ClusterIPs: lowest free from .2; explicit ones reserved first; None and ExternalName', () => {
    const s = apply(
      emptyState(),
      docs(
        service('a', ports),
        service('b', `  clusterIP: 198.19.0.2\n${ports}`),
        service('c', `  clusterIP: None\n${ports}`),
        service('d', '  type: ExternalName\n  externalName: example.com'),
        service('e', ports),
      ),
    );
    const ips = Object.fromEntries([...s.services.values()].map((v) => [v.name, v.clusterIP]));
    assert.deepEqual(ips, { a: '198.19.0.3', b: '198.19.0.2', c: 'None', d: '', e: '198.19.0.4' });
  });

  it('a changed service keeps its ClusterIP, NodePorts and LB address; a deleted one frees them', () => {
    const lb = (extraPort = '') =>
      service('lb', `  type: LoadBalancer\n  ports:\n  - {name: http, port: 80}\n${extraPort}`);
    const s1 = apply(emptyState(), docs(service('first', ports), lb()));
    const before = s1.services.get('default/lb');
    assert.equal(before?.clusterIP, '198.19.0.3');
    assert.equal(before?.loadBalancerIP, '198.19.128.1');
    assert.deepEqual(
      before?.ports.map((p) => p.nodePort),
      [30000],
    );
    const s2 = apply(s1, lb('  - {name: https, port: 443}'));
    const after = s2.services.get('default/lb');
    assert.equal(after?.clusterIP, '198.19.0.3');
    assert.equal(after?.loadBalancerIP, '198.19.128.1');
    assert.deepEqual(
      after?.ports.map((p) => [p.name, p.nodePort]),
      [
        ['http', 30000],
        ['https', 30001],
      ],
    );
    const s3 = deleteObjects(s2, [{ kind: 'Service', name: 'first' }]);
    const s4 = apply(s3, service('next', ports));
    assert.equal(s4.services.get('default/next')?.clusterIP, '198.19.0.2');
  });

  it('NodePorts: explicit ones honoured, others lowest free; LB address from spec.loadBalancerIP', () => {
    const s = apply(
      emptyState(),
      docs(
        service(
          'a',
          '  type: NodePort\n  ports: [{name: a, port: 80}, {name: b, port: 81, nodePort: 30000}]',
        ),
        service('b', '  type: LoadBalancer\n  loadBalancerIP: 198.19.128.7\n  ports: [{port: 80}]'),
        service(
          'c',
          '  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: [{port: 80}]',
        ),
      ),
    );
    assert.deepEqual(
      s.services.get('default/a')?.ports.map((p) => p.nodePort),
      [30001, 30000],
    );
    assert.deepEqual(
      s.services.get('default/b')?.ports.map((p) => p.nodePort),
      [30002],
    );
    assert.equal(s.services.get('default/b')?.loadBalancerIP, '198.19.128.7');
    assert.deepEqual(
      s.services.get('default/c')?.ports.map((p) => p.nodePort),
      [undefined],
    );
    assert.equal(s.services.get('default/c')?.loadBalancerIP, '198.19.128.1');
  });

  it('a rejected apply leaves the state exactly as it was', () => {
    const s1 = apply(
      emptyState(),
      service('a', '  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]'),
    );
    const snapshot = JSON.stringify(stateToJSON(s1));
    assert.throws(
      () =>
        apply(
          s1,
          docs(
            bare('fine'),
            service('b', '  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]'),
          ),
        ),
      (e: unknown) => e instanceof ManifestError && e.problems.length === 1,
    );
    assert.equal(JSON.stringify(stateToJSON(s1)), snapshot);
    assert.equal(s1.pods.size, 0);
  });

  it('exhausting the service CIDR is reported', () => {
    const addressing = { ...DEFAULT_ADDRESSING, serviceCIDR: '198.19.0.0/30' };
    const s1 = apply(emptyState(), service('a', ports), { nodes: 1, addressing });
    assert.equal(s1.services.get('default/a')?.clusterIP, '198.19.0.2');
    assert.throws(
      () => apply(s1, service('b', ports), { nodes: 1, addressing }),
      /Service default\/b: spec\.clusterIP: no free address left in the service CIDR 198\.19\.0\.0\/30/,
    );
  });
});

describe('state: deletes, namespaces and conditions', () => {
  it('deleting a namespace deletes what is in it; default is protected', () => {
    const inShop = (y: string) =>
      y.replace('metadata: {name: web}', 'metadata: {name: web, namespace: shop}');
    const s1 = apply(
      emptyState(),
      docs(
        inShop(deployment('web', 2)),
        inShop(service('web', '  selector: {app: web}\n  ports: [{port: 80}]')),
        bare('a'),
      ),
    );
    const s2 = deleteObjects(s1, [{ kind: 'Namespace', name: 'shop' }]);
    assert.deepEqual([...s2.namespaces.keys()], ['default']);
    assert.deepEqual([...s2.pods.keys()], ['default/a']);
    assert.equal(s2.services.size, 0);
    assert.equal(s2.endpointSlices.size, 0);
    assert.throws(
      () => deleteObjects(s2, [{ kind: 'Namespace', name: 'default' }]),
      (e: unknown) => e instanceof ModelError && e.code === 'FORBIDDEN',
    );
  });

  it('refsOf turns manifests into references for deleteObjects', () => {
    const refs = refsOf(
      parseManifestText(
        docs(bare('a'), 'apiVersion: v1\nkind: Node\nmetadata: {name: nd}'),
        'x.yaml',
      ),
    );
    assert.deepEqual(refs, [
      { kind: 'Pod', namespace: 'default', name: 'a' },
      { kind: 'Node', name: 'nd' },
    ]);
    assert.throws(
      () => refsOf([{ kind: 'Secret', metadata: { name: 's' } }]),
      /<inline>#0 Secret s: kind: unsupported kind/,
    );
  });

  it('setPodConditions changes one pod and nothing else; unknown pods are an error', () => {
    const s1 = apply(emptyState(), docs(bare('a'), bare('b')));
    const s2 = setPodConditions(s1, 'default/a', { terminating: true });
    assert.deepEqual(s2.pods.get('default/a')?.conditions, { ready: true, terminating: true });
    assert.deepEqual(s2.pods.get('default/b'), s1.pods.get('default/b'));
    assert.deepEqual(
      s1.pods.get('default/a')?.conditions,
      { ready: true, terminating: false },
      'input untouched',
    );
    assert.throws(
      () => setPodConditions(s1, 'default/zz', { ready: false }),
      (e: unknown) => e instanceof ModelError && e.code === 'OBJECT_NOT_FOUND',
    );
  });

  it('accepts bare objects as well as manifest documents', () => {
    const s = applyObjects(
      emptyState(),
      [
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'x' },
          spec: { ports: [{ port: 80 }] },
        },
      ],
      { nodes: 1 },
    );
    assert.equal(s.services.get('default/x')?.clusterIP, '198.19.0.2');
    assert.throws(
      () =>
        applyObjects(emptyState(), [
          { apiVersion: 'v1', kind: 'Service', metadata: { name: 'y' } },
        ]),
      /<inline>#0 Service default\/y: spec\.ports: required/,
    );
  });
});
