import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadObject } from '../bpf/object.js';
import { sockLbSpec } from '../datapath/sock-lb.js';
import { requireKernel } from '../testing/privileges.js';
import type { LbMapHandles } from './apply.js';
import { ApplyError, applyOps, readProgrammed } from './apply.js';
import type { MapOp } from './diff.js';

const backend = (i: number): MapOp => ({
  map: 'lb4_backends',
  op: 'update',
  key: i + 1,
  value: { address: `10.64.0.${i + 1}`, port: 8080, proto: 6, flags: 0, node_address: '0.0.0.0' },
});

describe('applyOps (kernel maps)', () => {
  it('writes a run as a batch and pins a failed batch to the one operation that failed', () => {
    requireKernel();
    const pinRoot = mkdtempSync(join('/sys/fs/bpf', `sl-apply-test-${process.pid}-`));
    try {
      // Room for 16 backends: the 17th write of a run of 20 fails (E2BIG).
      const obj = loadObject(sockLbSpec, { pinRoot, maxEntries: { lb4_backends: 16 } });
      try {
        const maps = obj.maps as unknown as LbMapHandles;
        const ops = Array.from({ length: 20 }, (_, i) => backend(i));
        assert.deepEqual(applyOps(maps, ops.slice(0, 12)), { purged: 0 });
        assert.equal(readProgrammed(maps).backends.size, 12);
        let caught: unknown;
        try {
          applyOps(maps, ops);
        } catch (error) {
          caught = error;
        }
        assert.ok(caught instanceof ApplyError, 'an ApplyError');
        assert.equal(caught.index, 16);
        assert.equal(caught.applied, 16);
        assert.deepEqual(caught.op, ops[16]);
        assert.match(caught.message, /E2BIG/);
        const held = readProgrammed(maps).backends;
        assert.deepEqual(
          [...held.keys()].sort((a, b) => a - b),
          Array.from({ length: 16 }, (_, i) => i + 1),
        );
      } finally {
        obj.close();
      }
    } finally {
      rmSync(pinRoot, { recursive: true, force: true });
    }
  });
});
