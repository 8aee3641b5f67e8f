import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { endpointSlicesForService, reconcileEndpointSlices } from './endpointslices.js';
import { parseManifestText } from './manifests.js';
import { applyObjects, emptyState, setPodConditions } from './state.js';
import type { ClusterState, EndpointSlice, Pod, Service } from './types.js';

function apply(state: ClusterState, yaml: string) {
  return applyObjects(state, parseManifestText(yaml, 'test.yaml'), { nodes: 2 });
}
const docs = (...parts: string[]) => parts.join('\n---\n');

const pod = (name: string, ports: string, extra = '') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: web}${extra}}
spec:
  containers: [{name: c, image: echo, ports: ${ports}}]
`;
const service = (spec: string, name = 'web', meta = '') => `
apiVersion: v1
kind: Service
metadata: {name: ${name}${meta}}
spec:
  selector: {app: web}
${spec}
`;

function slicesOf(state: ClusterState, serviceName = 'web'): EndpointSlice[] {
  return [...state.endpointSlices.values()].filter((s) => s.serviceName === serviceName);
}

/** port mapping -> pods in it, e.g. { "http/TCP/8080": ["a"] } */
function byPorts(slices: EndpointSlice[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of slices) {
    const key = s.ports.map((p) => `${p.name}/${p.protocol}/${p.port}`).join(',');
    out[key] = [...(out[key] ?? []), ...s.endpoints.map((e) => e.targetRef?.split('/')[1] ?? '?')];
  }
  return out;
}

describe('EndpointSlice controller', () => {
  it('resolves a named targetPort per pod: different numbers give different slices', () => {
    const s = apply(
      emptyState(),
      docs(
        pod('a', '[{name: http, containerPort: 8080}]'),
        pod('b', '[{name: http, containerPort: 9090}]'),
        pod('c', '[{name: http, containerPort: 8080}]'),
        service('  ports: [{port: 80, targetPort: http}]'),
      ),
    );
    const slices = slicesOf(s);
    assert.equal(slices.length, 2);
    assert.deepEqual(byPorts(slices), { '/TCP/8080': ['a', 'c'], '/TCP/9090': ['b'] });
    for (const slice of slices) {
      assert.match(slice.name, /^web-[a-z2-9]{5}$/);
      assert.equal(slice.managed, true);
      assert.equal(slice.addressType, 'IPv4');
    }
  });

  it('leaves a pod without the named port out of that port only', () => {
    const s = apply(
      emptyState(),
      docs(
        pod('a', '[{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]'),
        pod('b', '[{name: metrics, containerPort: 9100}]'),
        pod('c', '[{name: http, containerPort: 8080, protocol: UDP}]'),
        service(
          '  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9100, targetPort: metrics}]',
        ),
      ),
    );
    assert.deepEqual(byPorts(slicesOf(s)), {
      'http/TCP/8080,metrics/TCP/9100': ['a'],
      'metrics/TCP/9100': ['b'],
      // c's "http" is UDP, the service port TCP: no port resolves, an endpoint without ports.
      '': ['c'],
    });
  });

  it('conditions: unready, terminating, terminating and unready', () => {
    const s1 = apply(
      emptyState(),
      docs(
        pod('ready', '[{name: http, containerPort: 8080}]'),
        pod(
          'unready',
          '[{name: http, containerPort: 8080}]',
          ', annotations: {sluice.io/ready: "false"}',
        ),
        pod('term', '[{name: http, containerPort: 8080}]'),
        pod('term-unready', '[{name: http, containerPort: 8080}]'),
        service('  ports: [{port: 80, targetPort: http}]'),
      ),
    );
    let s = setPodConditions(s1, 'default/term', { terminating: true });
    s = setPodConditions(s, 'default/term-unready', { terminating: true, ready: false });
    const [slice] = slicesOf(s);
    assert.ok(slice);
    const conditions = Object.fromEntries(
      slice.endpoints.map((e) => [e.targetRef ?? '', e.conditions]),
    );
    assert.deepEqual(conditions, {
      'default/ready': { ready: true, serving: true, terminating: false },
      'default/unready': { ready: false, serving: false, terminating: false },
      'default/term': { ready: false, serving: true, terminating: true },
      'default/term-unready': { ready: false, serving: false, terminating: true },
    });
    const term = slice.endpoints.find((e) => e.targetRef === 'default/term');
    const termPod = s.pods.get('default/term');
    assert.deepEqual(term?.addresses, [termPod?.ip]);
    assert.equal(term?.nodeName, termPod?.nodeName);
  });

  it('publishNotReadyAddresses makes every endpoint ready, serving still follows the pod', () => {
    const s1 = apply(
      emptyState(),
      docs(
        pod(
          'unready',
          '[{name: http, containerPort: 8080}]',
          ', annotations: {sluice.io/ready: "false"}',
        ),
        pod('term', '[{name: http, containerPort: 8080}]'),
        service('  publishNotReadyAddresses: true\n  ports: [{port: 80, targetPort: http}]'),
      ),
    );
    const s = setPodConditions(s1, 'default/term', { terminating: true });
    const [slice] = slicesOf(s);
    assert.deepEqual(
      slice?.endpoints.map((e) => [e.targetRef, e.conditions]),
      [
        ['default/term', { ready: true, serving: true, terminating: true }],
        ['default/unready', { ready: true, serving: false, terminating: false }],
      ],
    );
  });

  it('splits more than 100 endpoints of one port mapping into slices of at most 100', () => {
    const many = Array.from({ length: 250 }, (_, i) =>
      pod(
        `p${String(i).padStart(3, '0')}`,
        '[{name: http, containerPort: 8080}]',
        ', annotations: {sluice.io/virtual: "true"}',
      ),
    );
    const s = apply(
      emptyState(),
      docs(...many, service('  ports: [{port: 80, targetPort: http}]')),
    );
    const slices = slicesOf(s);
    assert.deepEqual(
      slices.map((x) => x.endpoints.length).sort((a, b) => b - a),
      [100, 100, 50],
    );
    const all = slices.flatMap((x) => x.endpoints.map((e) => e.targetRef));
    assert.equal(new Set(all).size, 250);
    assert.equal(new Set(slices.map((x) => x.name)).size, 3);
    // The limit is the controller's --max-endpoints-per-slice.
    const svc = s.services.get('default/web');
    assert.ok(svc);
    const custom = endpointSlicesForService(svc, s.pods.values(), { maxEndpointsPerSlice: 40 });
    assert.equal(custom.length, 7);
  });

  it('placeholder slice without endpoints; nothing for selector-less or ExternalName services', () => {
    const s = apply(
      emptyState(),
      docs(
        service('  ports: [{port: 80}]', 'empty'),
        'apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec: {ports: [{port: 80}]}',
        'apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: example.com, selector: {app: web}}',
      ),
    );
    const [placeholder] = slicesOf(s, 'empty');
    assert.deepEqual(placeholder?.ports, []);
    assert.deepEqual(placeholder?.endpoints, []);
    assert.equal(slicesOf(s, 'empty').length, 1);
    assert.equal(slicesOf(s, 'manual').length, 0);
    assert.equal(slicesOf(s, 'ext').length, 0);
  });

  it('selects by labels in the service namespace; headless services get slices and labels', () => {
    const s = apply(
      emptyState(),
      docs(
        pod('a', '[{name: http, containerPort: 8080}]'),
        pod('other', '[{name: http, containerPort: 8080}]').replace('{app: web}', '{app: api}'),
        pod('elsewhere', '[{name: http, containerPort: 8080}]').replace(
          'name: elsewhere,',
          'name: elsewhere, namespace: shop,',
        ),
        service(
          '  clusterIP: None\n  ports: [{port: 80, targetPort: http}]',
          'web',
          ', labels: {team: shop}',
        ),
      ),
    );
    const [slice] = slicesOf(s);
    assert.deepEqual(
      slice?.endpoints.map((e) => e.targetRef),
      ['default/a'],
    );
    assert.deepEqual(slice?.labels, {
      team: 'shop',
      'kubernetes.io/service-name': 'web',
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      'service.kubernetes.io/headless': '',
    });
  });

  it('keeps user slices as given and recomputes managed ones on every change', () => {
    const user = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-1, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{name: "", port: 8443}]
endpoints: [{addresses: [198.18.200.1], conditions: {ready: false}}]
`;
    const s1 = apply(
      emptyState(),
      docs(
        user,
        pod('a', '[{name: http, containerPort: 8080}]'),
        service('  ports: [{port: 80, targetPort: http}]'),
      ),
    );
    const manual = s1.endpointSlices.get('default/manual-1');
    assert.equal(manual?.managed, false);
    assert.deepEqual(manual?.endpoints[0]?.conditions, {
      ready: false,
      serving: true,
      terminating: false,
    });
    const s2 = setPodConditions(s1, 'default/a', { ready: false });
    assert.deepEqual(s2.endpointSlices.get('default/manual-1'), manual);
    assert.equal(slicesOf(s2)[0]?.endpoints[0]?.conditions.ready, false);
    assert.equal(slicesOf(s1)[0]?.endpoints[0]?.conditions.ready, true);
  });

  it('names slices <service>-<5 chars>, cut like generateName, avoiding user slice names', () => {
    const svc: Service = {
      namespace: 'default',
      name: 'a'.repeat(63),
      labels: {},
      annotations: {},
      type: 'ClusterIP',
      clusterIP: '198.19.0.2',
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }],
      selector: { app: 'x' },
      externalIPs: [],
      sessionAffinity: 'None',
      affinityTimeoutSeconds: 10800,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      publishNotReadyAddresses: false,
    };
    const [slice] = endpointSlicesForService(svc, []);
    assert.equal(slice?.name.length, 63);
    // generateName keeps 58 characters of "<service>-" (here the dash is cut off).
    assert.ok(slice?.name.startsWith('a'.repeat(58)));
    const taken = new Set([`default/${slice?.name ?? ''}`]);
    const [other] = endpointSlicesForService(svc, [], {}, taken);
    assert.notEqual(other?.name, slice?.name);
  });

  it('reconcileEndpointSlices uses only services and pods (pure)', () => {
    const p: Pod = {
      namespace: 'default',
      name: 'a',
      uid: 'u',
      labels: { app: 'x' },
      annotations: {},
      nodeName: 'n',
      ip: '198.18.16.2',
      containers: [],
      conditions: { ready: true, terminating: false },
      virtual: true,
    };
    const svc: Service = {
      namespace: 'default',
      name: 's',
      labels: {},
      annotations: {},
      type: 'ClusterIP',
      clusterIP: '198.19.0.2',
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 8080 }],
      selector: { app: 'x' },
      externalIPs: [],
      sessionAffinity: 'None',
      affinityTimeoutSeconds: 10800,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      publishNotReadyAddresses: false,
    };
    const out = reconcileEndpointSlices({
      services: new Map([['default/s', svc]]),
      pods: new Map([['default/a', p]]),
      endpointSlices: new Map(),
    });
    const [slice] = [...out.values()];
    assert.deepEqual(slice?.ports, [{ name: '', protocol: 'TCP', port: 8080 }]);
    assert.deepEqual(slice?.endpoints, [
      {
        addresses: ['198.18.16.2'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'n',
        targetRef: 'default/a',
      },
    ]);
  });
});
