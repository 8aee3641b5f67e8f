/**
 * Scenario `maglev`: what Maglev tables cost the control plane, at S services x 100 backends
 * (default 1,000 x 100, issue 10) and table size M = 16381:
 *
 *   recompute-ms   every table computed from scratch (src/model/maglev.ts: SHA-256 of every
 *                  backend name, fill rounds), no map I/O
 *   write-ms       the same tables written into an empty lb_maglev (MaglevTables.sync: one inner
 *                  array created and batch-filled per service, then linked), time of the writes
 *   change-ms      then one backend of one service removed: the whole sync call (signatures of
 *                  every service compared, one table recomputed, its changed slots written)
 *   change-slots   how many slots that change rewrote (of M)
 *
 * Each run loads a fresh lb_tc object (unpinned, nothing attached) and closes it, which frees
 * its tables. Memory: S x M x 4 bytes of inner arrays (64 MiB at 1,000 services).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadObject } from '../../bpf/object.js';
import { lbTcRodata, lbTcSpec } from '../../datapath/lb-tc.js';
import type { MaglevMember } from '../../datapath/maglev.js';
import { maglevRodata, MaglevTables } from '../../datapath/maglev.js';
import { MAGLEV_DEFAULT_TABLE_SIZE, maglevTable, PermutationCache } from '../../model/maglev.js';
import type { MetricSpec, RunContext, Samples, Scenario, ScenarioPlan } from '../runner.js';

export const BACKENDS_PER_SERVICE = 100;
const DEFAULT_SCALES = [1000];
const QUICK_SCALES = [100];

export const METRICS: readonly MetricSpec[] = [
  { name: 'recompute-ms', unit: 'ms', better: 'lower' },
  { name: 'write-ms', unit: 'ms', better: 'lower' },
  { name: 'change-ms', unit: 'ms', better: 'lower' },
  { name: 'change-slots', unit: 'slots', better: 'lower' },
];

/** Service i's members: distinct pod addresses per service, ids as an agent would number them. */
export function syntheticMembers(services: number, backends: number): Map<number, MaglevMember[]> {
  const out = new Map<number, MaglevMember[]>();
  let id = 1;
  for (let s = 0; s < services; s++) {
    const members: MaglevMember[] = [];
    for (let b = 0; b < backends; b++) {
      const n = s * backends + b;
      const address = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      members.push({ name: `${address}:8080/TCP`, id: id++ });
    }
    out.set(s + 1, members);
  }
  return out;
}

async function runOnce(services: number, tableSize: number, ctx: RunContext): Promise<Samples> {
  const desired = syntheticMembers(services, BACKENDS_PER_SERVICE);

  // 1. recompute: pure, a fresh permutation cache (every name hashed), as on agent start.
  const cache = new PermutationCache(tableSize);
  let ns = 0n;
  let n = 0;
  for (const members of desired.values()) {
    const t0 = process.hrtime.bigint();
    maglevTable(members, tableSize, cache);
    ns += process.hrtime.bigint() - t0;
    if (++n % 100 === 0) {
      ctx.signal.throwIfAborted();
      await nextTurn();
    }
  }
  const recomputeMs = Number(ns) / 1e6;

  // 2. write into an empty map; 3. one backend of one service goes.
  const obj = loadObject(lbTcSpec, {
    rodata: {
      ...lbTcRodata({ nodeIPv4: '198.18.0.10' }),
      ...maglevRodata({ enabled: true, tableSize }),
    },
  });
  try {
    const tables = new MaglevTables(obj.maps.lb_maglev, tableSize);
    const first = tables.sync(desired);
    if (first.created !== services) {
      throw new Error(`maglev: created ${first.created} tables for ${services} services`);
    }
    ctx.signal.throwIfAborted();
    const changed = Math.ceil(services / 2);
    const members = desired.get(changed) ?? [];
    desired.set(changed, members.slice(1));
    const t0 = process.hrtime.bigint();
    const change = tables.sync(desired);
    const changeMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (change.recomputed !== 1)
      throw new Error(`maglev: a change recomputed ${change.recomputed}`);
    return {
      'recompute-ms': recomputeMs,
      'write-ms': first.writeMs,
      'change-ms': changeMs,
      'change-slots': change.slotsWritten,
    };
  } finally {
    obj.close();
  }
}

function planFor(services: number, tableSize: number): ScenarioPlan {
  return {
    params: { services, backends: BACKENDS_PER_SERVICE, tableSize },
    run(mode, ctx) {
      if (mode !== 'sluice-ts') return Promise.reject(new Error(`maglev: unknown mode '${mode}'`));
      return runOnce(services, tableSize, ctx);
    },
  };
}

export const maglevScenario: Scenario = {
  name: 'maglev',
  modes: ['sluice-ts'],
  metrics: METRICS,
  plan({ quick, services }) {
    const scales = services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES);
    return scales.map((s) => planFor(s, MAGLEV_DEFAULT_TABLE_SIZE));
  },
};
