/**
 * The Kubernetes source against an API server stub. There is no kube-apiserver on the build
 * machine, so these tests run the real client library (@kubernetes/client-node informers:
 * list, then watch) against a small in-process HTTP server that answers the list and watch
 * requests of the collections the source watches (five built-in ones and two custom resources),
 * and pushes watch events on demand (ADDED, MODIFIED, DELETED as JSON lines on the open watch
 * response, as the API server does). A collection the stub does not serve answers 404, as a
 * custom resource whose CRD is not installed does.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { tuningRules } from '../model/traffic-optimization.js';
import { KubernetesSource } from './kubernetes.js';
import type { SourceSnapshot } from './source.js';
import { snapshotReader } from '../testing/snapshots.js';

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const TRAFFIC_OPTIMIZATIONS = '/apis/sluice.io/v1alpha1/trafficoptimizations';
const CILIUM_POLICIES = '/apis/cilium.io/v2/ciliumnetworkpolicies';
const COLLECTIONS = [
  '/api/v1/namespaces',
  '/api/v1/nodes',
  '/api/v1/services',
  '/apis/discovery.k8s.io/v1/endpointslices',
  '/api/v1/pods',
  TRAFFIC_OPTIMIZATIONS,
  CILIUM_POLICIES,
];

/** Lists and watches of the collections, from objects held in memory. */
class ApiStub {
  private readonly objects = new Map<string, Map<string, Obj>>();
  private readonly watches = new Map<string, Set<ServerResponse>>();

  /** `collections`: what the stub serves (default all); the others answer 404. */
  constructor(collections: readonly string[] = COLLECTIONS) {
    for (const c of collections) this.install(c);
  }

  /** Starts serving a collection (a CRD applied). */
  install(collection: string): void {
    this.objects.set(collection, new Map());
    this.watches.set(collection, new Set());
  }

  /** Stops serving it (a CRD deleted): its watches end, its lists and watches answer 404. */
  uninstall(collection: string): void {
    for (const res of this.watches.get(collection) ?? []) res.end();
    this.objects.delete(collection);
    this.watches.delete(collection);
  }

  private version = 1;
  readonly requests: string[] = [];
  /** Lists of this collection answered 500 before the stub answers them. */
  failLists = { collection: '', times: 0 };
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const set of this.watches.values()) for (const res of set) res.end();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  watching(collection: string): number {
    return this.watches.get(collection)?.size ?? 0;
  }

  /** Stores the object and tells the open watches. */
  event(collection: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Obj): void {
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(++this.version);
    const key = `${stored.metadata.namespace as string | undefined}/${stored.metadata.name as string}`;
    const objects = this.objects.get(collection) as Map<string, Obj>;
    if (type === 'DELETED') objects.delete(key);
    else objects.set(key, stored);
    for (const res of this.watches.get(collection) ?? []) {
      res.write(`${JSON.stringify({ type, object: stored })}\n`);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://stub');
    this.requests.push(
      `${req.method} ${url.pathname}${url.searchParams.get('watch') ? ' watch' : ''}`,
    );
    const objects = this.objects.get(url.pathname);
    if (!objects) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 404, message: `${url.pathname} not found` }));
      return;
    }
    if (
      url.pathname === this.failLists.collection &&
      this.failLists.times > 0 &&
      !url.searchParams.get('watch')
    ) {
      this.failLists.times -= 1;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcdserver: leader changed' }));
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const set = this.watches.get(url.pathname) as Set<ServerResponse>;
      set.add(res);
      res.on('close', () => set.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'List',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.version) },
        items: [...objects.values()],
      }),
    );
  }
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'stub', server, skipTLSVerify: true }],
    users: [{ name: 'stub' }],
    contexts: [{ name: 'stub', cluster: 'stub', user: 'stub' }],
    currentContext: 'stub',
  });
  return kc;
}

const node = (name: string, ip: string, extra: Record<string, unknown> = {}): Obj => ({
  metadata: { name },
  spec: { podCIDR: '198.18.16.0/24' },
  status: { addresses: [{ type: 'InternalIP', address: ip }], ...extra },
});
const service = (name: string, nodePort: number): Obj => ({
  metadata: { namespace: 'default', name },
  spec: {
    type: 'NodePort',
    clusterIP: '198.19.0.20',
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort }],
  },
});
const slice = (name: string, service: string, addresses: string[]): Obj => ({
  metadata: {
    namespace: 'default',
    name,
    labels: {
      'kubernetes.io/service-name': service,
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    },
  },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: addresses.map((a) => ({
    addresses: [a],
    conditions: { ready: true },
    nodeName: 'node-0',
  })),
});

const optimization = (name: string, initialCongestionWindow: number): Obj => ({
  apiVersion: 'sluice.io/v1alpha1',
  kind: 'TrafficOptimization',
  metadata: { namespace: 'shop', name },
  spec: {
    podSelector: { matchLabels: { app: 'web' } },
    ports: [{ port: 8080 }],
    tcp: { congestionControl: 'bbr', initialCongestionWindow },
  },
});
const ciliumPolicy = (name: string): Obj => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { namespace: 'shop', name },
  spec: {
    endpointSelector: { matchLabels: { 'k8s:app': 'db' } },
    tcp: { enableBBR: true, noSlowStartAfterIdle: true },
  },
});

describe('kubernetes source (client-node informers against an API stub)', () => {
  it('lists everything into the first snapshot, then follows watch events one object at a time', async () => {
    const stub = new ApiStub();
    const server = await stub.start();
    stub.event('/api/v1/namespaces', 'ADDED', {
      metadata: { name: 'default', labels: { team: 'a' } },
    });
    stub.event('/api/v1/nodes', 'ADDED', node('node-0', '198.18.0.10'));
    stub.event('/api/v1/services', 'ADDED', service('web', 30080));
    stub.event('/api/v1/services', 'ADDED', service('bad', 40000));
    stub.event(
      '/apis/discovery.k8s.io/v1/endpointslices',
      'ADDED',
      slice('web-1', 'web', ['10.244.0.5', '10.244.0.6']),
    );
    stub.event('/api/v1/pods', 'ADDED', {
      metadata: { namespace: 'default', name: 'web-0' },
      spec: { nodeName: 'node-0' },
      status: { podIP: '10.244.0.5', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const source = new KubernetesSource({ kubeConfig: kubeConfigFor(server), restartMs: 50 });
    const snapshots = source.snapshots();
    const next = snapshotReader(snapshots);
    try {
      const first = await next();
      assert.equal(first.generation, 1);
      assert.equal(first.changes, undefined, 'the first snapshot is whole');
      assert.deepEqual([...first.state.services.keys()], ['default/web']);
      assert.equal(first.state.nodes.get('node-0')?.ip, '198.18.0.10');
      assert.deepEqual(
        first.state.endpointSlices.get('default/web-1')?.endpoints.map((e) => e.addresses[0]),
        ['10.244.0.5', '10.244.0.6'],
      );
      assert.equal(first.state.pods.get('default/web-0')?.conditions.ready, true);
      assert.deepEqual(first.state.namespaces.get('default')?.labels, { team: 'a' });
      assert.equal(first.skipped.length, 1);
      assert.equal(first.skipped[0]?.where, '/api/v1/namespaces/default/services/bad');
      assert.match(first.skipped[0]?.reason ?? '', /nodePort/);
      for (const c of COLLECTIONS) assert.ok(stub.requests.includes(`GET ${c}`), `listed ${c}`);

      // Every watch is open once the first snapshot is out? Not necessarily: wait for them.
      while (COLLECTIONS.some((c) => stub.watching(c) === 0))
        await new Promise((r) => setTimeout(r, 10));

      // A Node status heartbeat changes nothing the source keeps: no snapshot. The slice
      // update after it is the next snapshot, and it names only the slice.
      stub.event('/api/v1/nodes', 'MODIFIED', node('node-0', '198.18.0.10', { heartbeat: 'now' }));
      stub.event(
        '/apis/discovery.k8s.io/v1/endpointslices',
        'MODIFIED',
        slice('web-1', 'web', ['10.244.0.6']),
      );
      const updated = await next();
      assert.deepEqual([...(updated.changes?.endpointSlices ?? [])], ['default/web-1']);
      assert.deepEqual([...(updated.changes?.services ?? [])], []);
      assert.deepEqual([...(updated.changes?.nodes ?? [])], []);
      assert.deepEqual(
        updated.state.endpointSlices.get('default/web-1')?.endpoints.map((e) => e.addresses[0]),
        ['10.244.0.6'],
      );
      assert.notEqual(updated.digest, first.digest);

      // A fixed bad object comes in; a deleted Service goes.
      stub.event('/api/v1/services', 'MODIFIED', service('bad', 30081));
      const fixed = await next();
      assert.deepEqual([...(fixed.changes?.services ?? [])], ['default/bad']);
      assert.deepEqual(fixed.skipped, []);
      stub.event('/api/v1/services', 'DELETED', service('web', 30080));
      const deleted = await next();
      assert.deepEqual([...(deleted.changes?.services ?? [])], ['default/web']);
      assert.deepEqual([...deleted.state.services.keys()], ['default/bad']);
    } finally {
      await source.close();
      await stub.stop();
    }
  });

  it('waits for a good list of everything: a failing list is retried, never an empty cluster', async () => {
    const stub = new ApiStub();
    const server = await stub.start();
    stub.event('/api/v1/services', 'ADDED', service('web', 30080));
    stub.failLists = { collection: '/api/v1/services', times: 2 };
    const warnings: string[] = [];
    const logger = { warn: (_o: object, m: string) => warnings.push(m), debug: () => undefined };
    const source = new KubernetesSource({
      kubeConfig: kubeConfigFor(server),
      restartMs: 20,
      logger,
    });
    try {
      const first = await source.snapshots().next();
      assert.deepEqual([...(first.value as SourceSnapshot).state.services.keys()], ['default/web']);
      assert.equal(stub.requests.filter((r) => r === 'GET /api/v1/services').length, 3);
      assert.equal(warnings.length, 2);
    } finally {
      await source.close();
      await stub.stop();
    }
  });

  it('watches TrafficOptimizations and CiliumNetworkPolicies into the policies socket acceleration reads', async () => {
    const stub = new ApiStub();
    const server = await stub.start();
    stub.event('/api/v1/namespaces', 'ADDED', {
      metadata: { name: 'shop', annotations: { 'sluice.io/accelerate': 'true' } },
    });
    stub.event(TRAFFIC_OPTIMIZATIONS, 'ADDED', optimization('fast', 20));
    stub.event(TRAFFIC_OPTIMIZATIONS, 'ADDED', {
      ...optimization('bad', 10),
      spec: { podSelector: {}, tcp: { congestionControl: 'warp' } },
    });
    stub.event(CILIUM_POLICIES, 'ADDED', ciliumPolicy('tcp'));
    const source = new KubernetesSource({
      kubeConfig: kubeConfigFor(server),
      restartMs: 50,
      congestionControls: ['reno', 'cubic', 'bbr'],
    });
    const snapshots = source.snapshots();
    const next = snapshotReader(snapshots);
    const noServiceChanges = (s: SourceSnapshot): void => {
      assert.ok(s.changes, 'a policy change is incremental');
      assert.deepEqual(
        [s.changes.services.size, s.changes.endpointSlices.size, s.changes.nodes.size],
        [0, 0, 0],
        'a policy names no Service, EndpointSlice or Node',
      );
    };
    try {
      const first = await next();
      assert.ok(stub.requests.includes(`GET ${TRAFFIC_OPTIMIZATIONS}`));
      assert.ok(stub.requests.includes(`GET ${CILIUM_POLICIES}`));
      assert.deepEqual([...first.state.policies.keys()].sort(), ['shop/fast', 'shop/tcp']);
      assert.deepEqual(first.state.namespaces.get('shop')?.annotations, {
        'sluice.io/accelerate': 'true',
      });
      assert.deepEqual(
        tuningRules(first.state).map((r) => [r.origin, r.ports, r.settings]),
        [
          [
            'TrafficOptimization shop/fast',
            [8080],
            { congestionControl: 'bbr', initialCongestionWindow: 20 },
          ],
          [
            'CiliumNetworkPolicy shop/tcp spec',
            [],
            { congestionControl: 'bbr', noSlowStartAfterIdle: true },
          ],
        ],
      );
      assert.equal(first.skipped.length, 1);
      assert.equal(
        first.skipped[0]?.where,
        '/apis/sluice.io/v1alpha1/namespaces/shop/trafficoptimizations/bad',
      );
      assert.match(first.skipped[0]?.reason ?? '', /spec\.tcp\.congestionControl: .*"warp"/);

      while (COLLECTIONS.some((c) => stub.watching(c) === 0))
        await new Promise((r) => setTimeout(r, 10));

      stub.event(TRAFFIC_OPTIMIZATIONS, 'MODIFIED', optimization('fast', 30));
      const modified = await next();
      noServiceChanges(modified);
      assert.deepEqual(
        tuningRules(modified.state).find((r) => r.origin === 'TrafficOptimization shop/fast')
          ?.settings,
        { congestionControl: 'bbr', initialCongestionWindow: 30 },
      );

      // One name, two kinds: the TrafficOptimization is kept, the other reported until it goes.
      stub.event(CILIUM_POLICIES, 'ADDED', ciliumPolicy('fast'));
      const shadowed = await next();
      noServiceChanges(shadowed);
      assert.equal(shadowed.state.policies.get('shop/fast')?.kind, 'TrafficOptimization');
      const shadow = shadowed.skipped.find((s) => s.kind === 'CiliumNetworkPolicy');
      assert.equal(shadow?.where, '/apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies/fast');
      assert.match(shadow?.reason ?? '', /TrafficOptimization with this name/);
      stub.event(TRAFFIC_OPTIMIZATIONS, 'DELETED', optimization('fast', 30));
      const unshadowed = await next();
      assert.equal(unshadowed.state.policies.get('shop/fast')?.kind, 'CiliumNetworkPolicy');
      assert.equal(
        unshadowed.skipped.some((s) => s.kind === 'CiliumNetworkPolicy'),
        false,
      );

      stub.event(CILIUM_POLICIES, 'DELETED', ciliumPolicy('tcp'));
      const deleted = await next();
      noServiceChanges(deleted);
      assert.deepEqual([...deleted.state.policies.keys()], ['shop/fast']);
    } finally {
      await source.close();
      await stub.stop();
    }
  });

  it('a CRD that is not installed (404) is logged once, holds nothing back, and is picked up once installed', async () => {
    const stub = new ApiStub(COLLECTIONS.filter((c) => c !== TRAFFIC_OPTIMIZATIONS));
    const server = await stub.start();
    stub.event('/api/v1/services', 'ADDED', service('web', 30080));
    stub.event(CILIUM_POLICIES, 'ADDED', ciliumPolicy('tcp'));
    const warnings: { fields: object; message: string }[] = [];
    const logger = {
      warn: (fields: object, message: string) => warnings.push({ fields, message }),
      debug: () => undefined,
    };
    const source = new KubernetesSource({
      kubeConfig: kubeConfigFor(server),
      restartMs: 20,
      logger,
    });
    const snapshots = source.snapshots();
    const next = snapshotReader(snapshots);
    const listsOf = (c: string) => stub.requests.filter((r) => r === `GET ${c}`).length;
    try {
      const first = await next();
      assert.deepEqual([...first.state.services.keys()], ['default/web']);
      assert.deepEqual([...first.state.policies.keys()], ['shop/tcp']);
      assert.deepEqual(first.skipped, []);

      // Listed again (backoff), and still one log line however many 404s.
      while (listsOf(TRAFFIC_OPTIMIZATIONS) < 3) await new Promise((r) => setTimeout(r, 10));
      const notInstalled = warnings.filter((w) => /not installed/.test(w.message));
      assert.equal(notInstalled.length, 1, JSON.stringify(warnings));
      assert.match(notInstalled[0]?.message ?? '', /^TrafficOptimization \(sluice\.io\/v1alpha1\)/);
      assert.match(notInstalled[0]?.message ?? '', /trafficoptimizations: 404/);
      assert.equal(warnings.length, 1, 'no other warning: the other informers run');

      // The other informers kept running: a Service event still comes through.
      while (stub.watching('/api/v1/services') === 0) await new Promise((r) => setTimeout(r, 10));
      stub.event('/api/v1/services', 'MODIFIED', service('web', 30081));
      const serviceChanged = await next();
      assert.deepEqual([...(serviceChanged.changes?.services ?? [])], ['default/web']);

      // The CRD is applied and an object created: the next list takes it, then the watch.
      stub.install(TRAFFIC_OPTIMIZATIONS);
      stub.event(TRAFFIC_OPTIMIZATIONS, 'ADDED', optimization('fast', 20));
      const installed = await next();
      assert.deepEqual([...installed.state.policies.keys()].sort(), ['shop/fast', 'shop/tcp']);
      assert.ok(warnings.some((w) => /TrafficOptimization .*is served now/.test(w.message)));
      while (stub.watching(TRAFFIC_OPTIMIZATIONS) === 0)
        await new Promise((r) => setTimeout(r, 10));
      stub.event(TRAFFIC_OPTIMIZATIONS, 'DELETED', optimization('fast', 20));
      const deleted = await next();
      assert.deepEqual([...deleted.state.policies.keys()], ['shop/tcp']);

      // The Cilium CRD deleted without its objects' deletions (the agent was away): the
      // watch's 404 drops them, with one log line.
      while (stub.watching(CILIUM_POLICIES) === 0) await new Promise((r) => setTimeout(r, 10));
      stub.uninstall(CILIUM_POLICIES);
      const uninstalled = await next();
      assert.deepEqual([...uninstalled.state.policies.keys()], []);
      assert.equal(
        warnings.filter((w) => /^CiliumNetworkPolicy .*not installed/.test(w.message)).length,
        1,
      );
    } finally {
      await source.close();
      await stub.stop();
    }
  });
});
