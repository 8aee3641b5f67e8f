import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseManifestText } from './manifests.js';
import { categorizeEndpoints, compare, compareIpPort, proxyView } from './proxy-view.js';
import { applyObjects, emptyState, setPodConditions } from './state.js';
import type { ClusterState, EndpointView, ServicePortView } from './types.js';

function apply(state: ClusterState, yaml: string) {
  return applyObjects(state, parseManifestText(yaml, 'test.yaml'), { nodes: 2 });
}
const docs = (...parts: string[]) => parts.join('\n---\n');
const pod = (name: string, node: string, ports: string, app = 'web') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: ${app}}}
spec:
  nodeName: ${node}
  containers: [{name: c, image: echo, ports: ${ports}}]
`;
const service = (name: string, spec: string, app = 'web') => `
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: {app: ${app}}
${spec}
`;
const eps = (view: ServicePortView | undefined) =>
  view?.endpoints.map((e) => `${e.ip}:${e.port}${e.isLocal ? ' local' : ''}`);

describe('proxyView', () => {
  const cluster = apply(
    emptyState(),
    docs(
      pod(
        'a',
        'node-0',
        '[{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]',
      ),
      pod(
        'b',
        'node-1',
        '[{name: http, containerPort: 8081}, {name: metrics, containerPort: 9100}]',
      ),
      service(
        'web',
        '  type: NodePort\n  sessionAffinity: ClientIP\n  ports:\n  - {name: http, port: 80, targetPort: http, nodePort: 30080}\n  - {name: metrics, port: 9100, targetPort: metrics}',
      ),
      service('headless', '  clusterIP: None\n  ports: [{port: 80, targetPort: http}]'),
      'apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: example.com}',
      pod('redis', 'node-1', '[{name: redis, containerPort: 6379}]', 'redis'),
      service(
        'redis',
        '  type: LoadBalancer\n  externalTrafficPolicy: Local\n  externalIPs: [198.18.250.1]\n  ports: [{port: 6379, targetPort: redis}]',
        'redis',
      ),
    ),
  );

  it('one view per service port; headless and ExternalName services skipped', () => {
    const views = proxyView(cluster, 'node-0');
    assert.deepEqual(
      views.map((v) => v.id),
      ['default/redis', 'default/web:http', 'default/web:metrics'],
    );
  });

  it('merges the slices of a service: a named port resolved per pod', () => {
    const views = proxyView(cluster, 'node-0');
    const http = views.find((v) => v.id === 'default/web:http');
    const metrics = views.find((v) => v.id === 'default/web:metrics');
    const a = cluster.pods.get('default/a')?.ip ?? '';
    const b = cluster.pods.get('default/b')?.ip ?? '';
    assert.deepEqual(eps(http), [`${a}:8080 local`, `${b}:8081`]);
    assert.deepEqual(eps(metrics), [`${a}:9100 local`, `${b}:9100`]);
    assert.equal(http?.port, 80);
    assert.equal(http?.nodePort, 30080);
    assert.equal(metrics?.nodePort, 30000);
    assert.deepEqual(http?.sessionAffinity, { timeoutSeconds: 10800 });
    assert.equal(http?.clusterIP, cluster.services.get('default/web')?.clusterIP);
    assert.deepEqual(http?.endpoints[0], {
      ip: a,
      port: 8080,
      nodeName: 'node-0',
      isLocal: true,
      ready: true,
      serving: true,
      terminating: false,
      pod: 'default/a',
    });
  });

  it('isLocal follows the node the view is computed for', () => {
    const http1 = proxyView(cluster, 'node-1').find((v) => v.id === 'default/web:http');
    assert.deepEqual(
      http1?.endpoints.map((e) => [e.nodeName, e.isLocal]),
      [
        ['node-0', false],
        ['node-1', true],
      ],
    );
  });

  it('frontends: LoadBalancer address, externalIPs, traffic policies, no affinity', () => {
    const redis = proxyView(cluster, 'node-0').find((v) => v.id === 'default/redis');
    assert.deepEqual(
      redis && {
        portName: redis.portName,
        loadBalancerIPs: redis.loadBalancerIPs,
        externalIPs: redis.externalIPs,
        externalTrafficPolicy: redis.externalTrafficPolicy,
        internalTrafficPolicy: redis.internalTrafficPolicy,
        sessionAffinity: redis.sessionAffinity,
      },
      {
        portName: '',
        loadBalancerIPs: ['198.19.128.1'],
        externalIPs: ['198.18.250.1'],
        externalTrafficPolicy: 'Local',
        internalTrafficPolicy: 'Cluster',
        sessionAffinity: null,
      },
    );
  });

  it('conditions pass through from the slices', () => {
    const s = setPodConditions(cluster, 'default/b', { terminating: true });
    const http = proxyView(s, 'node-0').find((v) => v.id === 'default/web:http');
    assert.deepEqual(
      http?.endpoints.map((e) => [e.pod, e.ready, e.serving, e.terminating]),
      [
        ['default/a', true, true, false],
        ['default/b', false, true, true],
      ],
    );
  });

  it('user slices: matched by port name and protocol, de-duplicated, sorted as strings', () => {
    const user = (name: string, node: string, addresses: string[], protocol = 'TCP') => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{name: api, port: 8443, protocol: ${protocol}}]
endpoints: [${addresses.map((a) => `{addresses: [${a}], nodeName: ${node}}`).join(', ')}]
`;
    const s = apply(
      emptyState(),
      docs(
        'apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec: {ports: [{name: api, port: 443}]}',
        user('m-1', 'node-1', ['198.18.200.2', '198.18.200.10']),
        user('m-2', 'node-0', ['198.18.200.2']),
        user('m-3', 'node-0', ['198.18.200.99'], 'UDP'),
      ),
    );
    const [view] = proxyView(s, 'node-0');
    assert.equal(view?.id, 'default/manual:api');
    assert.deepEqual(eps(view), ['198.18.200.10:8443', '198.18.200.2:8443 local']);
  });
});

describe('categorizeEndpoints (kube-proxy CategorizeEndpoints)', () => {
  const ep = (ip: string, over: Partial<EndpointView> = {}): EndpointView => ({
    ip,
    port: 80,
    isLocal: false,
    ready: true,
    serving: true,
    terminating: false,
    ...over,
  });
  const view = (
    endpoints: EndpointView[],
    over: Partial<ServicePortView> = {},
  ): ServicePortView => ({
    id: 'default/s',
    namespace: 'default',
    serviceName: 's',
    portName: '',
    protocol: 'TCP',
    clusterIP: '198.19.0.2',
    port: 80,
    externalIPs: [],
    loadBalancerIPs: [],
    sessionAffinity: null,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    endpoints,
    ...over,
  });
  const ips = (list: EndpointView[] | null) => (list === null ? null : list.map((e) => e.ip));

  it('cluster traffic uses ready endpoints, else serving terminating ones', () => {
    const r = categorizeEndpoints(
      view([
        ep('a'),
        ep('b', { ready: false, terminating: true }),
        ep('c', { ready: false, serving: false }),
      ]),
    );
    assert.deepEqual(ips(r.clusterEndpoints), ['a']);
    assert.equal(r.hasAnyEndpoints, true);
    const fallback = categorizeEndpoints(
      view([
        ep('b', { ready: false, terminating: true }),
        ep('c', { ready: false, serving: false, terminating: true }),
      ]),
    );
    assert.deepEqual(ips(fallback.clusterEndpoints), ['b']);
    const none = categorizeEndpoints(view([ep('c', { ready: false, serving: false })]));
    assert.equal(none.hasAnyEndpoints, false);
    assert.deepEqual(none.allReachableEndpoints, []);
  });

  it('externalTrafficPolicy Local: local endpoints for external traffic, all for cluster', () => {
    const v = view([ep('a', { isLocal: true }), ep('b')], {
      nodePort: 30080,
      externalTrafficPolicy: 'Local',
    });
    const r = categorizeEndpoints(v);
    assert.deepEqual(ips(r.clusterEndpoints), ['a', 'b']);
    assert.deepEqual(ips(r.localEndpoints), ['a']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['a', 'b']);
    const remoteOnly = categorizeEndpoints(
      view([ep('b')], { nodePort: 30080, externalTrafficPolicy: 'Local' }),
    );
    assert.equal(remoteOnly.localEndpoints?.length ?? 0, 0);
    assert.equal(remoteOnly.hasAnyEndpoints, true);
  });

  it('internalTrafficPolicy Local: only local endpoints, serving-terminating as fallback', () => {
    const r = categorizeEndpoints(
      view([ep('a', { isLocal: true, ready: false, terminating: true }), ep('b')], {
        internalTrafficPolicy: 'Local',
      }),
    );
    assert.equal(r.clusterEndpoints, null, 'Cluster policy is never used');
    assert.deepEqual(ips(r.localEndpoints), ['a']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['a']);
  });

  it('merges cluster and local lists when local uses terminating endpoints', () => {
    const r = categorizeEndpoints(
      view([ep('a', { isLocal: true, ready: false, terminating: true }), ep('b')], {
        nodePort: 30080,
        externalTrafficPolicy: 'Local',
      }),
    );
    assert.deepEqual(ips(r.clusterEndpoints), ['b']);
    assert.deepEqual(ips(r.localEndpoints), ['a']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['a', 'b']);
  });
});

describe('compareIpPort', () => {
  it('orders like the "ip:port" strings, also when one address is a prefix of another', () => {
    const ips = ['10.0.0.1', '10.0.0.12', '10.0.0.2', '1.2.3.4', 'fd00::1', 'fd00:', ''];
    const ports = [0, 8, 80, 800, 8080, 9, 65535];
    for (const a of ips) {
      for (const b of ips) {
        for (const p of ports) {
          for (const q of ports) {
            assert.equal(
              compareIpPort({ ip: a, port: p }, { ip: b, port: q }),
              compare(`${a}:${p}`, `${b}:${q}`),
              `${a}:${p} vs ${b}:${q}`,
            );
          }
        }
      }
    }
  });
});
