/**
 * The Kubernetes source against an API server stub. There is no kube-apiserver on the build
 * machine, so these tests run the real client library (@kubernetes/client-node informers:
 * list, then watch) against a small in-process HTTP server that answers the list and watch
 * requests of the five collections the source watches, and pushes watch events on demand
 * (ADDED, MODIFIED, DELETED as JSON lines on the open watch response, as the API server does).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesSource } from './kubernetes.js';
import type { SourceSnapshot } from './source.js';

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const COLLECTIONS = [
  '/api/v1/namespaces',
  '/api/v1/nodes',
  '/api/v1/services',
  '/apis/discovery.k8s.io/v1/endpointslices',
  '/api/v1/pods',
];

/** Lists and watches of the collections, from objects held in memory. */
class ApiStub {
  private readonly objects = new Map<string, Map<string, Obj>>(
    COLLECTIONS.map((c) => [c, new Map()]),
  );
  private readonly watches = new Map<string, Set<ServerResponse>>(
    COLLECTIONS.map((c) => [c, new Set()]),
  );
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
    const next = async (): Promise<SourceSnapshot> => {
      const r = await snapshots.next();
      assert.equal(r.done, false);
      return r.value;
    };
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
});
