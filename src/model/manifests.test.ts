import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ManifestError } from './errors.js';
import { jsonErrorOffset, loadManifests, parseManifestText } from './manifests.js';

const TESTDATA = fileURLToPath(new URL('../../src/model/testdata/', import.meta.url));

function kinds(docs: { object: unknown }[]): string[] {
  return docs.map((d) => {
    const o = d.object as { kind: string; metadata: { name: string } };
    return `${o.kind}/${o.metadata.name}`;
  });
}

describe('parseManifestText', () => {
  it('splits multi-document YAML, skipping empty documents, with index and line', () => {
    const text = [
      '# leading comment',
      'kind: Service',
      'metadata: {name: a}',
      '---',
      '# only a comment',
      '---',
      '---',
      'kind: Pod',
      'metadata:',
      '  name: b',
      '',
    ].join('\n');
    const docs = parseManifestText(text, 'x.yaml');
    assert.deepEqual(kinds(docs), ['Service/a', 'Pod/b']);
    assert.deepEqual(
      docs.map((d) => d.source),
      [
        { file: 'x.yaml', index: 0, line: 2 },
        { file: 'x.yaml', index: 1, line: 8 },
      ],
    );
  });

  it('reads YAML as Kubernetes does: 1.1 booleans and octal, dates as strings', () => {
    const [doc] = parseManifestText('a: yes\nb: 0755\nc: 2024-01-01\nd: "yes"\ne: ~\n', 'v.yaml');
    assert.deepEqual(doc?.object, { a: true, b: 493, c: '2024-01-01', d: 'yes', e: null });
  });

  it('expands a List in YAML into its items, each with its own line', () => {
    const text =
      'kind: List\nitems:\n- kind: Pod\n  metadata: {name: a}\n- kind: Pod\n  metadata: {name: b}\n';
    const docs = parseManifestText(text, 'l.yaml');
    assert.deepEqual(kinds(docs), ['Pod/a', 'Pod/b']);
    assert.deepEqual(
      docs.map((d) => [d.source.index, d.source.line]),
      [
        [0, 3],
        [1, 5],
      ],
    );
  });

  it('reads JSON: a single object, or a kind: List with items', () => {
    const one = parseManifestText('{"kind":"Pod","metadata":{"name":"p"}}', 'p.json');
    assert.deepEqual(kinds(one), ['Pod/p']);
    assert.deepEqual(one[0]?.source, { file: 'p.json', index: 0 });
    const list = parseManifestText(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { kind: 'Service', metadata: { name: 's' } },
          { kind: 'Pod', metadata: { name: 'q' } },
        ],
      }),
      'list.json',
    );
    assert.deepEqual(kinds(list), ['Service/s', 'Pod/q']);
    assert.deepEqual(
      list.map((d) => d.source.index),
      [0, 1],
    );
  });

  it('reports a YAML syntax error with file, document index and line', () => {
    const text = 'kind: Pod\nmetadata: {name: a}\n---\nkind: Service\nmetadata:\n  name: a: b\n';
    assert.throws(
      () => parseManifestText(text, 'bad.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof ManifestError);
        assert.equal(err.code, 'MANIFEST_INVALID');
        const [p] = err.problems;
        assert.equal(p?.file, 'bad.yaml');
        assert.equal(p?.index, 1);
        assert.equal(p?.line, 6);
        assert.match(err.message, /^bad\.yaml#1: YAML syntax error at line 6, column \d+: /);
        return true;
      },
    );
  });

  it('reports a duplicate key as a YAML error', () => {
    assert.throws(
      () => parseManifestText('kind: Pod\nkind: Service\n', 'dup.yaml'),
      /dup\.yaml#0: YAML syntax error at line 2.*unique/,
    );
  });

  it('reports a JSON syntax error with its line', () => {
    assert.throws(
      () => parseManifestText('{\n  "kind": "Pod",\n  "metadata": }\n', 'bad.json'),
      /bad\.json#0: JSON syntax error at line 3/,
    );
    assert.throws(
      () => parseManifestText('{\n  "kind": "Pod",\n\n  "a": [1, 2,]\n}', 'trailing.json'),
      /trailing\.json#0: JSON syntax error at line 4/,
    );
    assert.equal(jsonErrorOffset('{"a": "\\x"}'), 7);
    assert.equal(jsonErrorOffset('{"a": 1} x'), 9);
    assert.equal(jsonErrorOffset('{"a": [true, null, -1.5e3, "\\u00e9"]}'), undefined);
  });
});

describe('loadManifests', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-manifests-'));
    const pod = (name: string) => `kind: Pod\nmetadata: {name: ${name}}\n`;
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(dir, 'b.yaml'), pod('b'));
    writeFileSync(join(dir, 'a.yaml'), pod('a') + '---\n' + pod('a2'));
    writeFileSync(join(dir, 'a', 'z.yml'), pod('az'));
    writeFileSync(
      join(dir, 'sub', 'd.json'),
      JSON.stringify({ kind: 'Pod', metadata: { name: 'd' } }),
    );
    writeFileSync(join(dir, 'sub', 'deeper', 'e.yaml'), pod('e'));
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    writeFileSync(join(dir, '.hidden.yaml'), pod('hidden'));
    writeFileSync(join(dir, 'B.yaml'), pod('upper'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('walks directories depth first in code-point order, manifest extensions only', () => {
    const docs = loadManifests([dir]);
    assert.deepEqual(
      docs.map((d) => `${relative(dir, d.source.file)}#${d.source.index}`),
      [
        'B.yaml#0',
        'a/z.yml#0',
        'a.yaml#0',
        'a.yaml#1',
        'b.yaml#0',
        'sub/d.json#0',
        'sub/deeper/e.yaml#0',
      ],
    );
  });

  it('reads explicit files in the order given, whatever their extension', () => {
    const docs = loadManifests([join(dir, 'b.yaml'), join(dir, 'a', 'z.yml')]);
    assert.deepEqual(kinds(docs), ['Pod/b', 'Pod/az']);
  });

  it('collects problems from every file before throwing', () => {
    const bad = join(dir, 'bad-dir');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, '1.yaml'), 'kind: [\n');
    writeFileSync(join(bad, '2.json'), '{');
    try {
      assert.throws(
        () => loadManifests([bad, join(dir, 'missing.yaml')]),
        (err: unknown) => {
          assert.ok(err instanceof ManifestError);
          assert.deepEqual(
            err.problems.map((p) => [relative(dir, p.file), p.index]),
            [
              ['missing.yaml', -1],
              ['bad-dir/1.yaml', 0],
              ['bad-dir/2.json', 0],
            ],
          );
          assert.match(err.message, /missing\.yaml: cannot read: ENOENT/);
          return true;
        },
      );
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('loads the sample application in testdata', () => {
    const docs = loadManifests([join(TESTDATA, 'app')]);
    assert.deepEqual(
      docs.map((d) => `${relative(join(TESTDATA, 'app'), d.source.file)}#${d.source.index}`),
      [
        '00-namespace.yaml#0',
        'api.yaml#0',
        'api.yaml#1',
        'client.json#0',
        'extras.json#0',
        'extras.json#1',
        'extras.json#2',
        'policies/policies.yaml#0',
        'policies/policies.yaml#1',
        'policies/policies.yaml#2',
        'redis.yaml#0',
        'redis.yaml#1',
        'web.yaml#0',
        'web.yaml#1',
      ],
    );
  });
});

describe('loadManifests at scale', () => {
  it('reads a file of 200k documents without overflowing the stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-manifests-many-'));
    try {
      const count = 200_000;
      const text = Array.from({ length: count }, (_, i) => `a: ${i}`).join('\n---\n');
      writeFileSync(join(dir, 'many.yaml'), text);
      const docs = loadManifests([dir]);
      assert.equal(docs.length, count);
      assert.deepEqual(docs[count - 1]?.object, { a: count - 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
