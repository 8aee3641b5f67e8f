import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkNodeName,
  externalNetns,
  fabricNetns,
  isLabNetns,
  labNames,
  nodeNetns,
  podHostVeth,
  podNetns,
} from './naming.js';

describe('lab naming', () => {
  it('names the default lab sl-* and a named lab sl-<name>-*', () => {
    const d = labNames();
    assert.deepEqual(d, { labName: '', prefix: 'sl-', dirName: 'lab' });
    assert.equal(fabricNetns(d), 'sl-fabric');
    assert.equal(externalNetns(d), 'sl-external');
    assert.equal(nodeNetns(d, 'node-0'), 'sl-node-node-0');
    assert.equal(podNetns(d, 1, 42), 'sl-pod-1-42');
    const t = labNames('t42');
    assert.deepEqual(t, { labName: 't42', prefix: 'sl-t42-', dirName: 'lab-t42' });
    assert.equal(podNetns(t, 0, 3), 'sl-t42-pod-0-3');
    assert.equal(podHostVeth(99999), 'p99999');
  });

  it("sweeps only its own lab's namespaces", () => {
    const d = labNames();
    const t = labNames('t1');
    for (const n of ['sl-fabric', 'sl-external', 'sl-node-a', 'sl-pod-0-1'])
      assert.ok(isLabNetns(d, n), n);
    for (const n of [
      'sl-t1-fabric',
      'sl-test-1-a',
      'sl-doctor-5',
      'sl-pod-x',
      'fabric',
      'sl-nodes',
    ]) {
      assert.ok(!isLabNetns(d, n), n);
    }
    assert.ok(isLabNetns(t, 'sl-t1-pod-3-4'));
    assert.ok(!isLabNetns(t, 'sl-pod-3-4'));
  });

  it('rejects lab names that could collide and bad node names', () => {
    for (const bad of ['node', 'pod', 'fabric', 'external', 'T1', 'a-b', 'x'.repeat(13)]) {
      assert.throws(() => labNames(bad), /bad lab name/, bad);
    }
    checkNodeName('worker-1.example');
    for (const bad of ['Node', '-a', 'a/b', 'external', 'x'.repeat(64)]) {
      assert.throws(() => checkNodeName(bad), /bad node name/, bad);
    }
  });
});
