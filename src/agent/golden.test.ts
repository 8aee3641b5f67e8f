/**
 * Golden tests of the reconcile: manifests in, plan + diff against empty maps, the maps dumped
 * in their stable text form and compared with checked-in expectations. To accept a change:
 *
 *   SLUICE_UPDATE_GOLDEN=1 node --test dist/agent/golden.test.js
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { clusterStateFromDocs, readManifestsDir } from '../sources/manifests.js';
import { applyToProgrammed, diffDatapath } from './diff.js';
import { dumpProgrammed } from './dump.js';
import { planForNode } from './plan.js';
import { emptyProgrammed } from './programmed.js';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), '../../src/agent/testdata');
const UPDATE = process.env.SLUICE_UPDATE_GOLDEN === '1';

function expectGolden(file: string, actual: string): void {
  const path = join(TESTDATA, file);
  if (UPDATE) {
    writeFileSync(path, actual);
    return;
  }
  const expected = readFileSync(path, 'utf8');
  assert.equal(actual, expected, `${file} differs; SLUICE_UPDATE_GOLDEN=1 accepts the new output`);
}

function loadCluster() {
  const { docs, problems } = readManifestsDir(join(TESTDATA, 'cluster/manifests'), new Map());
  assert.deepEqual(problems, []);
  return clusterStateFromDocs(docs);
}

describe('reconcile golden dumps', () => {
  it('skips each bad object with one reason and keeps the rest', () => {
    const { skipped } = loadCluster();
    const text = skipped.map((s) => `${s.where} ${s.kind} ${s.name}: ${s.reason}`).join('\n');
    expectGolden('cluster/skipped.golden', `${text}\n`);
  });

  for (const node of ['node-0', 'node-1']) {
    it(`programs ${node} from empty maps`, () => {
      const { state } = loadCluster();
      const plan = planForNode(state, node);
      const { ops } = diffDatapath(plan, emptyProgrammed());
      const programmed = applyToProgrammed(emptyProgrammed(), ops);
      expectGolden(`cluster/${node}.golden`, dumpProgrammed(programmed));
      // Programming what is programmed is a no-op.
      assert.deepEqual(diffDatapath(plan, programmed).ops, []);
    });
  }
});
