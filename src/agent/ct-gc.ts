/**
 * Garbage collection of expired conntrack entries (ct4).
 *
 * The datapath already treats an entry whose expires_ns has passed as dead (ct4_alive in
 * bpf/include/conntrack.h): a lookup ignores it and a new flow on the same tuple overwrites it,
 * so correctness never depends on this collector. What it buys is room: ct4 is an LRU map, and
 * under pressure the LRU evicts by last use, so a long idle established flow (6 h timeout) can
 * be evicted before a closed flow that died 10 s ago. Deleting dead entries first keeps the
 * LRU for live flows.
 *
 * One pass reads the map with batched lookups, then deletes the expired keys in batches,
 * yielding to the event loop between batches so the agent stays responsive. Each key is looked
 * up again right before its delete and spared if the datapath renewed it meanwhile (a new flow
 * on the same tuple); the window left is one syscall wide, and losing that race only makes the
 * next packet of that flow create its entry again.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BpfMap } from '../bpf/map.js';
import type { Ct4EntryValue, Ct4KeyValue } from '../datapath/lb-tc.js';

export interface CtGcPass {
  scanned: number;
  /** Entries found expired. */
  expired: number;
  /** Entries deleted (expired ones the datapath did not renew meanwhile). */
  deleted: number;
  ms: number;
}

/** Deletes every ct4 entry whose lifetime ended before `now` (CLOCK_MONOTONIC ns). */
export async function collectExpiredFlows(
  map: BpfMap<Ct4KeyValue, Ct4EntryValue>,
  now: () => bigint = () => process.hrtime.bigint(),
  batch = 1024,
): Promise<CtGcPass> {
  const started = process.hrtime.bigint();
  const at = now();
  const entries = map.lookupBatch();
  const expired = entries.filter(([, e]) => e.expires_ns <= at).map(([key]) => key);
  let deleted = 0;
  for (let i = 0; i < expired.length; i += batch) {
    if (i > 0) await nextTurn();
    for (const key of expired.slice(i, i + batch)) {
      const current = map.lookup(key);
      if (current && current.expires_ns <= at && map.delete(key)) deleted += 1;
    }
  }
  return {
    scanned: entries.length,
    expired: expired.length,
    deleted,
    ms: Number(process.hrtime.bigint() - started) / 1e6,
  };
}
