import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ManifestDoc } from '../model/index.js';
import { parseManifestText, proxyView } from '../model/index.js';
import {
  ManifestsSource,
  clusterStateFromDocs,
  manifestsDigest,
  readManifestsDir,
} from './manifests.js';
import { snapshotReader } from '../testing/snapshots.js';

const docs = (text: string): ManifestDoc[] => parseManifestText(text, 'test.yaml');

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  ports: [{ port: 80, nodePort: 30080 }]
status: { loadBalancer: { ingress: [{ ip: 203.0.113.7 }] } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: { kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io }
addressType: IPv4
ports: [{ port: 8080 }]
endpoints: [{ addresses: [10.244.1.5], nodeName: a }]
---
apiVersion: v1
kind: Node
metadata: { name: a }
status: { addresses: [{ type: InternalIP, address: 192.0.2.1 }] }
`;

const listOf = (services: number) => ({
  apiVersion: 'v1',
  kind: 'List',
  items: Array.from({ length: services }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `s${i}` },
    spec: { clusterIP: `10.96.0.${i + 10}`, ports: [{ port: 80 }] },
  })),
});

describe('clusterStateFromDocs', () => {
  it('takes allocations as given (any address plan) and the LB ingress from status', () => {
    const { state, skipped } = clusterStateFromDocs(docs(SERVICE));
    assert.deepEqual(skipped, []);
    const svc = state.services.get('default/web');
    assert.equal(svc?.clusterIP, '10.96.0.10');
    assert.equal(svc?.loadBalancerIP, '203.0.113.7');
    assert.equal(state.endpointSlices.get('default/web-1')?.managed, true);
    assert.equal(state.nodes.get('a')?.ip, '192.0.2.1');
    const [view] = proxyView(state, 'a');
    assert.deepEqual(view?.loadBalancerIPs, ['203.0.113.7']);
    assert.equal(view?.endpoints[0]?.isLocal, true);
  });

  it('skips what the API server would have completed or refused, with the field', () => {
    const { state, skipped } = clusterStateFromDocs(
      docs(`apiVersion: v1
kind: Service
metadata: { name: no-ip }
spec: { ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: no-nodeport }
spec: { type: NodePort, clusterIP: 10.96.0.11, ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: range }
spec: { type: NodePort, clusterIP: 10.96.0.12, ports: [{ port: 80, nodePort: 3000 }] }
`),
      { nodePortRange: { min: 30000, max: 30010 } },
    );
    assert.equal(state.services.size, 0);
    assert.deepEqual(
      skipped.map((s) => `${s.name}: ${s.reason}`),
      [
        'default/no-ip: spec.clusterIP: not allocated: the agent programs the ClusterIP the API server allocated',
        'default/no-nodeport: spec.ports[0].nodePort: not allocated',
        'default/range: spec.ports[0].nodePort: must be within the node port range 30000-30010, got 3000',
      ],
    );
  });

  it('skips a Service with a frontend inside the cluster CIDR, when it is configured', () => {
    const frontends = docs(`apiVersion: v1
kind: Service
metadata: { name: ext }
spec: { clusterIP: 10.96.0.20, externalIPs: [203.0.113.9, 10.244.3.3], ports: [{ port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: lb }
spec: { type: LoadBalancer, clusterIP: 10.96.0.21, ports: [{ port: 80, nodePort: 30081 }] }
status: { loadBalancer: { ingress: [{ ip: 10.244.9.1 }] } }
---
apiVersion: v1
kind: Service
metadata: { name: fine }
spec: { clusterIP: 10.96.0.22, externalIPs: [203.0.113.9], ports: [{ port: 81 }] }
`);
    const { state, skipped } = clusterStateFromDocs(frontends, { clusterCIDR: '10.244.0.0/16' });
    assert.deepEqual([...state.services.keys()], ['default/fine']);
    assert.deepEqual(
      skipped.map((s) => `${s.name}: ${s.reason}`),
      [
        'default/ext: spec.externalIPs[1]: 10.244.3.3 is inside the pod range 10.244.0.0/16',
        'default/lb: status.loadBalancer.ingress[0].ip: 10.244.9.1 is inside the pod range 10.244.0.0/16',
      ],
    );
    assert.equal(clusterStateFromDocs(frontends).state.services.size, 3, 'no range: any address');
  });
});

describe('manifestsDigest', () => {
  it('depends on names and contents, not on order', () => {
    const a = { name: 'a.yaml', content: 'x' };
    const b = { name: 'b.yaml', content: 'y' };
    assert.equal(manifestsDigest([a, b]), manifestsDigest([b, a]));
    assert.notEqual(manifestsDigest([a, b]), manifestsDigest([a, { ...b, content: 'z' }]));
  });
});

describe('ManifestsSource', () => {
  it('yields the directory, then each change; a broken file keeps its last good objects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-source-'));
    const source = new ManifestsSource(dir, { debounceMs: 10, resyncMs: 0 });
    try {
      writeFileSync(join(dir, 'app.yaml'), SERVICE);
      const it = source.snapshots();
      const next = snapshotReader(it);
      const first = await next();
      assert.equal(first.generation, 1);
      assert.equal(first.state.services.size, 1);

      writeFileSync(join(dir, 'app.yaml'), SERVICE.replace('10.244.1.5', '10.244.1.6'));
      const second = await next();
      assert.equal(second.generation, 2);
      assert.equal(
        second.state.endpointSlices.get('default/web-1')?.endpoints[0]?.addresses[0],
        '10.244.1.6',
      );

      writeFileSync(join(dir, 'app.yaml'), `${SERVICE}\n---\nkind: [unclosed\n`);
      const third = await next();
      assert.equal(third.state.services.size, 1, 'the last good read is kept');
      assert.match(third.skipped[0]?.reason ?? '', /YAML syntax error.*last good version/);
      assert.equal(
        third.state.endpointSlices.get('default/web-1')?.endpoints[0]?.addresses[0],
        '10.244.1.6',
      );

      await source.close();
      assert.equal((await it.next()).done, true);
    } finally {
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sees every atomic replace (write + rename), as the lab writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-source-'));
    const source = new ManifestsSource(dir, { debounceMs: 10, resyncMs: 0 });
    try {
      const it = source.snapshots();
      assert.equal((await it.next()).value?.state.services.size, 0);
      for (let i = 1; i <= 5; i++) {
        writeFileSync(join(dir, '.cluster.json.tmp'), JSON.stringify(listOf(i)));
        renameSync(join(dir, '.cluster.json.tmp'), join(dir, 'cluster.json'));
        const next = await Promise.race([
          it.next(),
          sleep(5000).then(() => assert.fail(`change ${i} was not seen`)),
        ]);
        assert.equal(next.value?.state.services.size, i);
      }
    } finally {
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails when the directory does not exist', async () => {
    const source = new ManifestsSource('/nonexistent/sluice-manifests');
    await assert.rejects(source.snapshots().next(), /does not exist/);
  });
});

describe('readManifestsDir at scale', () => {
  it('reads a file of 200k documents, and keeps them past a bad edit, without overflowing the stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-manifests-many-'));
    try {
      const count = 200_000;
      const file = join(dir, 'many.yaml');
      writeFileSync(file, Array.from({ length: count }, (_, i) => `a: ${i}`).join('\n---\n'));
      const lastGood: Parameters<typeof readManifestsDir>[1] = new Map();
      const first = readManifestsDir(dir, lastGood);
      assert.deepEqual(first.problems, []);
      assert.equal(first.docs.length, count);
      // A syntax error: the file's last good documents stand in for it.
      writeFileSync(file, 'a: [unclosed\n');
      const second = readManifestsDir(dir, lastGood);
      assert.equal(second.problems.length > 0, true);
      assert.equal(second.docs.length, count);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
