/**
 * The manifests source's incremental index, driven directly (no fs.watch, no timing) through an
 * in-memory reader that counts reads, and through the real file system once: a change reads
 * and parses only the changed files, and the result always equals a whole read from scratch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { ClusterState } from '../model/index.js';
import { parseManifests, stateToJSON } from '../model/index.js';
import type { ManifestReader } from './manifest-index.js';
import { ManifestIndex, fsManifestReader } from './manifest-index.js';
import { clusterStateFromDocs } from './manifest-state.js';
import { ManifestsSource, readManifestsDir } from './manifests.js';
import { snapshotReader } from '../testing/snapshots.js';

const DIR = '/m';

/** Files in memory; `version` moves on every write (the stat signature). */
class MemoryReader implements ManifestReader {
  readonly files = new Map<string, { content: string; version: number }>();
  reads: string[] = [];
  private version = 0;

  write(name: string, content: string): string {
    this.files.set(name, { content, version: ++this.version });
    return join(DIR, name);
  }

  remove(name: string): string {
    this.files.delete(name);
    return join(DIR, name);
  }

  list(dir: string) {
    return { files: [...this.files.keys()].sort().map((n) => join(dir, n)), problems: [] };
  }

  /** Files whose read fails with EACCES. */
  readonly unreadable = new Set<string>();

  read(path: string): string {
    this.reads.push(path.slice(DIR.length + 1));
    if (this.unreadable.has(path.slice(DIR.length + 1)))
      throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), {
        code: 'EACCES',
      });
    const f = this.files.get(path.slice(DIR.length + 1));
    if (!f) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return f.content;
  }

  signature(path: string): string | undefined {
    return this.files.get(path.slice(DIR.length + 1))?.version.toString();
  }

  /** What the reads since the last call were. */
  take(): string[] {
    const out = this.reads;
    this.reads = [];
    return out;
  }
}

/** One Service (NodePort) and its EndpointSlice. */
function app(i: number, opts: { nodePort?: number; endpoint?: string } = {}): string {
  return `apiVersion: v1
kind: Service
metadata: { name: s${i} }
spec:
  type: NodePort
  clusterIP: 10.96.1.${i}
  ports: [{ port: 80, targetPort: 8080, nodePort: ${opts.nodePort ?? 30000 + i} }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s${i}-1
  labels: { kubernetes.io/service-name: s${i} }
addressType: IPv4
ports: [{ port: 8080 }]
endpoints: [{ addresses: [${opts.endpoint ?? `10.244.0.${i}`}], nodeName: a }]
`;
}

const NODE = `apiVersion: v1
kind: Node
metadata: { name: a }
status: { addresses: [{ type: InternalIP, address: 192.0.2.1 }] }
`;

const name = (i: number) => `app-${String(i).padStart(2, '0')}.yaml`;

/** The state and skipped objects a whole read from scratch gives. */
function fromScratch(reader: MemoryReader) {
  const docs = [...reader.files.keys()]
    .sort()
    .flatMap((n) => parseManifests(reader.files.get(n)?.content ?? '', n).docs);
  return clusterStateFromDocs(docs);
}

const json = (s: ClusterState) => JSON.stringify(stateToJSON(s));
const sorted = (set: ReadonlySet<string> | undefined) => [...(set ?? [])].sort();

describe('ManifestIndex (incremental manifests)', () => {
  function setUp() {
    const reader = new MemoryReader();
    reader.write('00-node.yaml', NODE);
    for (let i = 1; i <= 20; i++) reader.write(name(i), app(i));
    const index = new ManifestIndex(DIR, { reader });
    const first = index.refresh(new Set(), true);
    assert.ok(first);
    assert.equal(first.changes, undefined, 'the first refresh is whole');
    assert.equal(reader.take().length, 21);
    assert.equal(first.state.services.size, 20);
    return { reader, index };
  }

  it('reads and parses only the file an event names, and names only its changed objects', () => {
    const { reader, index } = setUp();
    const path = reader.write(name(7), app(7, { endpoint: '10.244.9.9' }));
    const r = index.refresh(new Set([path]), false);
    assert.ok(r);
    assert.deepEqual(reader.take(), [name(7)]);
    assert.deepEqual(r.read, [name(7)]);
    assert.deepEqual(sorted(r.changes?.endpointSlices), ['default/s7-1']);
    assert.deepEqual(sorted(r.changes?.services), []);
    assert.deepEqual(sorted(r.changes?.nodes), []);
    assert.equal(
      r.state.endpointSlices.get('default/s7-1')?.endpoints[0]?.addresses[0],
      '10.244.9.9',
    );
    assert.equal(json(r.state), json(fromScratch(reader).state));

    // The same text again (an editor's save without changes): read, nothing to say.
    reader.write(name(7), app(7, { endpoint: '10.244.9.9' }));
    assert.equal(index.refresh(new Set([join(DIR, name(7))]), false), undefined);
    assert.deepEqual(reader.take(), [name(7)]);
  });

  it('on a resync reads only the files whose signature moved (a missed event)', () => {
    const { reader, index } = setUp();
    assert.equal(index.refresh(new Set(), true), undefined, 'nothing moved');
    assert.deepEqual(reader.take(), []);
    reader.write(name(3), app(3, { endpoint: '10.244.3.33' }));
    const r = index.refresh(new Set(), true);
    assert.deepEqual(reader.take(), [name(3)]);
    assert.deepEqual(sorted(r?.changes?.endpointSlices), ['default/s3-1']);
  });

  it('a removed file withdraws its objects, and only those, without reading anything', () => {
    const { reader, index } = setUp();
    const r = index.refresh(new Set([reader.remove(name(4))]), false);
    assert.ok(r);
    assert.deepEqual(reader.take(), []);
    assert.deepEqual(sorted(r.changes?.services), ['default/s4']);
    assert.deepEqual(sorted(r.changes?.endpointSlices), ['default/s4-1']);
    assert.equal(r.state.services.has('default/s4'), false);
    assert.equal(r.state.services.size, 19);
    assert.equal(json(r.state), json(fromScratch(reader).state));
  });

  it('a file that does not parse is reported by file and line, and its objects stay', () => {
    const { reader, index } = setUp();
    const good = reader.files.get(name(5))?.content ?? '';
    const path = reader.write(name(5), `${good}---\nkind: [unclosed\n`);
    const broken = index.refresh(new Set([path]), false);
    assert.ok(broken, 'the problem is news');
    assert.deepEqual(reader.take(), [name(5)]);
    assert.deepEqual(
      broken.skipped.map((s) => s.where),
      [`${name(5)}#2`],
    );
    assert.match(
      broken.skipped[0]?.reason ?? '',
      /^YAML syntax error at line \d+, column \d+: .*\(the last good version of the file is kept\)$/,
    );
    assert.ok(broken.state.services.has('default/s5'), 'the datapath is left as it was');
    assert.deepEqual(
      [broken.changes?.services.size, broken.changes?.endpointSlices.size],
      [0, 0],
      'no object changed',
    );
    // Still broken (another event on it): nothing new.
    assert.equal(index.refresh(new Set([path]), false), undefined);
    // Fixed, with a change: the change comes through.
    reader.write(name(5), app(5, { endpoint: '10.244.5.55' }));
    const fixed = index.refresh(new Set([path]), false);
    assert.deepEqual(fixed?.skipped, []);
    assert.deepEqual(sorted(fixed?.changes?.endpointSlices), ['default/s5-1']);
  });

  it('a file that cannot be read is reported and keeps its objects until it can', () => {
    const { reader, index } = setUp();
    reader.unreadable.add(name(8));
    const path = reader.write(name(8), app(8)); // same text, new signature
    const r = index.refresh(new Set([path]), false);
    assert.deepEqual(
      r?.skipped.map((s) => [s.where, s.reason]),
      [
        [
          name(8),
          `cannot read: EACCES: permission denied, open '${path}' (the last good version of the file is kept)`,
        ],
      ],
    );
    assert.ok(r?.state.services.has('default/s8'));
    reader.unreadable.delete(name(8));
    const back = index.refresh(new Set([path]), false);
    assert.deepEqual(back?.skipped, [], 'readable again, with the same text: the problem goes');
    assert.deepEqual(sorted(back?.changes?.services), []);
  });

  it('a broken new file is reported and adds nothing', () => {
    const { reader, index } = setUp();
    const r = index.refresh(new Set([reader.write('zz.json', '{"kind": ')]), false);
    assert.match(r?.skipped[0]?.reason ?? '', /^JSON syntax error/);
    assert.equal(r?.skipped[0]?.where, 'zz.json#0');
    assert.doesNotMatch(r?.skipped[0]?.reason ?? '', /last good/);
    assert.equal(r?.state.services.size, 20);
  });

  it('an edit that takes a NodePort from a later file names that file’s Service too', () => {
    const { reader, index } = setUp();
    // app-02 (read before app-09) claims s9's NodePort: s9 is skipped, s2 moves.
    const r = index.refresh(new Set([reader.write(name(2), app(2, { nodePort: 30009 }))]), false);
    assert.ok(r);
    assert.deepEqual(reader.take(), [name(2)]);
    assert.deepEqual(sorted(r.changes?.services), ['default/s2', 'default/s9']);
    assert.equal(r.state.services.has('default/s9'), false);
    assert.deepEqual(
      r.skipped.map((s) => [s.where, s.reason]),
      [
        [
          `${name(9)}#0`,
          'spec.ports[0].nodePort: 30009 is already allocated to service default/s2',
        ],
      ],
    );
    assert.equal(json(r.state), json(fromScratch(reader).state));
    // Given back: s9 returns.
    const back = index.refresh(new Set([reader.write(name(2), app(2))]), false);
    assert.deepEqual(sorted(back?.changes?.services), ['default/s2', 'default/s9']);
    assert.ok(back?.state.services.has('default/s9'));
    assert.deepEqual(back?.skipped, []);
  });

  it('gives what a whole read gives, on the golden cluster', () => {
    const dir = join(
      dirname(fileURLToPath(import.meta.url)),
      '../../src/agent/testdata/cluster/manifests',
    );
    const whole = readManifestsDir(dir, new Map());
    const expected = clusterStateFromDocs(whole.docs);
    const r = new ManifestIndex(dir, { reader: fsManifestReader }).refresh(new Set(), true);
    assert.equal(json(r?.state ?? ({} as ClusterState)), json(expected.state));
    assert.deepEqual(r?.skipped, expected.skipped);
  });
});

describe('ManifestsSource reads what the events name', () => {
  it('one file changed among many: only it is read again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-incremental-'));
    const reads: string[] = [];
    const reader: ManifestReader = {
      ...fsManifestReader,
      read: (path) => {
        reads.push(path.slice(dir.length + 1));
        return fsManifestReader.read(path);
      },
    };
    const source = new ManifestsSource(dir, { debounceMs: 20, resyncMs: 0, reader });
    try {
      writeFileSync(join(dir, '00-node.yaml'), NODE);
      for (let i = 1; i <= 12; i++) writeFileSync(join(dir, name(i)), app(i));
      const it = source.snapshots();
      const next = snapshotReader(it);
      const first = await next();
      assert.equal(first.state.services.size, 12);
      assert.equal(new Set(reads).size, 13);
      reads.length = 0;

      writeFileSync(join(dir, name(6)), app(6, { endpoint: '10.244.6.66' }));
      const second = await next();
      assert.deepEqual([...new Set(reads)], [name(6)]);
      assert.deepEqual(sorted(second.changes?.endpointSlices), ['default/s6-1']);
      reads.length = 0;

      rmSync(join(dir, name(11)));
      const third = await next();
      assert.deepEqual(reads, []);
      assert.deepEqual(sorted(third.changes?.services), ['default/s11']);
      assert.equal(third.state.services.size, 11);
    } finally {
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
