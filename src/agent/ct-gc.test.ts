import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BpfMap } from '../bpf/map.js';
import { loadObject } from '../bpf/object.js';
import type { Ct4EntryValue, Ct4KeyValue } from '../datapath/lb-tc.js';
import { CtDir, lbTcRodata, lbTcSpec } from '../datapath/lb-tc.js';
import { requireKernel } from '../testing/privileges.js';
import {
  GC_MAX_INTERVAL_MS,
  GC_MIN_INTERVAL_MS,
  collectExpiredFlows,
  nextGcIntervalMs,
} from './ct-gc.js';

const SEC = 1_000_000_000n;

function flow(sport: number, dir: number, expires: bigint): [Ct4KeyValue, Ct4EntryValue] {
  return [
    { saddr: '10.0.0.1', daddr: '10.96.0.10', sport, dport: 80, proto: 6, dir, pad: undefined },
    {
      expires_ns: expires,
      created_ns: 0n,
      client_addr: '10.0.0.1',
      frontend_addr: '10.96.0.10',
      backend_addr: '10.64.0.5',
      snat_addr: '10.0.0.1',
      client_port: sport,
      frontend_port: 80,
      backend_port: 8080,
      snat_port: sport,
      rev_nat_id: 1,
      backend_id: 1,
      state: 2,
      flags: 0,
      pad: undefined,
    },
  ] as never;
}

/** A fresh lb_tc object's ct4 map, in pins of its own, closed and removed afterwards. */
async function withCt4(
  name: string,
  body: (ct4: BpfMap<Ct4KeyValue, Ct4EntryValue>) => Promise<void>,
): Promise<void> {
  requireKernel();
  const pinRoot = mkdtempSync(join('/sys/fs/bpf', `sl-ctgc-${name}-${process.pid}-`));
  try {
    const obj = loadObject(lbTcSpec, {
      pinRoot,
      rodata: lbTcRodata({ nodeIPv4: '198.18.0.10' }),
    });
    try {
      await body(obj.maps.ct4);
    } finally {
      obj.close();
    }
  } finally {
    rmSync(pinRoot, { recursive: true, force: true });
  }
}

describe('conntrack garbage collection (kernel ct4 map)', () => {
  it('deletes expired entries, keeps live ones, and counts', async () => {
    await withCt4('test', async (ct4) => {
      const now = process.hrtime.bigint();
      const dead = [40000, 40001, 40002].map((p) => flow(p, CtDir.FORWARD, now - SEC));
      const live = [41000, 41001].map((p) => flow(p, CtDir.FORWARD, now + 60n * SEC));
      for (const [k, v] of [...dead, ...live]) ct4.update(k, v);
      const pass = await collectExpiredFlows(ct4, () => now, 2);
      assert.deepEqual(
        { scanned: pass.scanned, expired: pass.expired, deleted: pass.deleted },
        { scanned: 5, expired: 3, deleted: 3 },
      );
      const left = ct4
        .lookupBatch()
        .map(([k]) => k.sport)
        .sort();
      assert.deepEqual(left, [41000, 41001]);
      // Nothing left to collect.
      assert.equal((await collectExpiredFlows(ct4, () => now)).deleted, 0);
    });
  });

  it('puts back an entry renewed between the scan and its delete', async () => {
    await withCt4('race', async (ct4) => {
      const now = process.hrtime.bigint();
      for (const [k, v] of [42000, 42001].map((p) => flow(p, CtDir.FORWARD, now - SEC))) {
        ct4.update(k, v);
      }
      // The datapath renews 42001 (a new flow on its tuple) right after the scan saw it dead.
      const racing = new Proxy(ct4, {
        get(target, prop) {
          if (prop !== 'scanRaw') return Reflect.get(target, prop, target) as unknown;
          return (chunk: Parameters<typeof ct4.scanRaw>[0]) => {
            const read = target.scanRaw(chunk);
            const [k, v] = flow(42001, CtDir.FORWARD, now + 60n * SEC);
            target.update(k, v);
            return read;
          };
        },
      });
      const pass = await collectExpiredFlows(racing, () => now);
      assert.deepEqual(
        { expired: pass.expired, deleted: pass.deleted },
        { expired: 2, deleted: 1 },
      );
      assert.deepEqual(
        ct4.lookupBatch().map(([k, v]) => [k.sport, v.expires_ns]),
        [[42001, now + 60n * SEC]],
      );
    });
  });
});

describe('nextGcIntervalMs', () => {
  const capacity = 262144;
  it('halves the wait after a pass that freed a tenth of the map, down to the minimum', () => {
    assert.equal(nextGcIntervalMs(GC_MAX_INTERVAL_MS, capacity / 10, capacity), 15_000);
    let wait = GC_MAX_INTERVAL_MS;
    for (let i = 0; i < 10; i++) wait = nextGcIntervalMs(wait, capacity / 2, capacity);
    assert.equal(wait, GC_MIN_INTERVAL_MS);
  });
  it('doubles it after a pass that freed almost nothing, up to the maximum', () => {
    assert.equal(nextGcIntervalMs(GC_MIN_INTERVAL_MS, 10, capacity), 10_000);
    assert.equal(nextGcIntervalMs(20_000, 0, capacity), GC_MAX_INTERVAL_MS);
  });
  it('keeps it in between', () => {
    assert.equal(nextGcIntervalMs(10_000, capacity / 20, capacity), 10_000);
  });
});
