/**
 * Garbage collection of expired conntrack entries (ct4).
 *
 * The datapath already treats an entry whose expires_ns has passed as dead (ct4_alive in
 * bpf/include/conntrack.h): a lookup ignores it and a new flow on the same tuple overwrites it,
 * so correctness never depends on this collector. What it buys is room and speed:
 * - room: ct4 is an LRU map, and under pressure the LRU evicts by last use, so a long idle
 *   established flow (6 h timeout) can be evicted before a closed flow that died 10 s ago.
 *   Deleting dead entries first keeps the LRU for live flows;
 * - speed: a dead entry stays in its hash bucket's chain, which every lookup landing there
 *   walks (a cold cache line each). After a burst of new flows (the pps bench's `new` regime:
 *   ~190k flows in 3 s, each dead a second later) the live flows of the next run paid for it:
 *   node 0's cost per packet rose from ~470 to ~690 ns and the delivered rate fell ~13% until
 *   a pass removed them.
 *
 * How often: nextGcIntervalMs, after each pass. A pass that found much dead brings the next
 * one closer (down to GC_MIN_INTERVAL_MS), a pass that found little moves it back out (up to
 * GC_MAX_INTERVAL_MS): an idle node scans rarely, a node under a churn of short flows keeps
 * its table clean within seconds.
 *
 * One pass reads the map with batched lookups and looks at one field of each entry (its
 * expiry, read from the raw bytes: decoding 260k entries into objects cost a pass ~1.5 s of
 * CPU), then takes each expired entry out with BPF_MAP_LOOKUP_AND_DELETE_ELEM, yielding to the
 * event loop between batches so the agent stays responsive. Should the value taken out show the
 * datapath renewed it since the scan (a new flow on the same tuple), it is put back unless the
 * datapath has made another meanwhile; the window left is one syscall wide, and losing that race
 * only makes the next packet of that flow create its entry again. A pass over 240k entries,
 * 220k of them expired, took ~2.2 s of CPU decoded and deleted by a lookup and a delete each;
 * ~0.55 s now, nearly all of it the one system call per expired entry.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BpfMap } from '../bpf/map.js';
import type { Ct4EntryValue, Ct4KeyValue } from '../datapath/lb-tc.js';
import { Ct4Entry } from '../datapath/lb-tc.js';

export interface CtGcPass {
  scanned: number;
  /** Entries found expired. */
  expired: number;
  /** Entries deleted (expired ones the datapath did not renew meanwhile). */
  deleted: number;
  ms: number;
}

/** Where struct ct4_entry keeps expires_ns (a u64, host order), from the BTF-checked layout. */
const EXPIRES_AT = (() => {
  const field = Ct4Entry.fields.find((f) => f.name === 'expires_ns');
  if (field?.size !== 8) throw new Error('ct-gc: ct4_entry.expires_ns is not a u64');
  return field.offset;
})();

/** Deletes every ct4 entry whose lifetime ended before `now` (CLOCK_MONOTONIC ns). */
export async function collectExpiredFlows(
  map: BpfMap<Ct4KeyValue, Ct4EntryValue>,
  now: () => bigint = () => process.hrtime.bigint(),
  batch = 1024,
): Promise<CtGcPass> {
  const started = process.hrtime.bigint();
  const at = now();
  const ks = map.key.size;
  const vs = map.value.size;
  let scanned = 0;
  const expired: Buffer[] = [];
  const read = map.scanRaw((keys, values, count) => {
    scanned += count;
    for (let i = 0; i < count; i++) {
      if (values.readBigUInt64LE(i * vs + EXPIRES_AT) <= at) {
        expired.push(Buffer.from(keys.subarray(i * ks, (i + 1) * ks)));
      }
    }
  });
  if (!read) throw new Error(`ct-gc: ${map.name} has no batch lookup`);
  const value = Buffer.alloc(vs);
  let deleted = 0;
  for (let i = 0; i < expired.length; i++) {
    if (i > 0 && i % batch === 0) await nextTurn();
    const key = expired[i] as Buffer;
    if (!map.lookupAndDeleteRaw(key, value)) continue;
    if (value.readBigUInt64LE(EXPIRES_AT) <= at) deleted += 1;
    else map.insertRaw(key, value); // renewed since the scan: back, unless a newer one is there
  }
  return {
    scanned,
    expired: expired.length,
    deleted,
    ms: Number(process.hrtime.bigint() - started) / 1e6,
  };
}

/** The longest and shortest wait between two passes. */
export const GC_MAX_INTERVAL_MS = 30_000;
export const GC_MIN_INTERVAL_MS = 5_000;

/**
 * The wait before the next pass, from the last one: halved when it deleted at least a tenth of
 * the map's capacity, doubled when it deleted under a hundredth, kept otherwise; within
 * [GC_MIN_INTERVAL_MS, GC_MAX_INTERVAL_MS]. Capacity, not entries scanned: an LRU map full of
 * dead flows and one with a few dead among many live ones are told apart by what was freed.
 */
export function nextGcIntervalMs(previousMs: number, deleted: number, capacity: number): number {
  const share = capacity > 0 ? deleted / capacity : 0;
  let next = previousMs;
  if (share >= 0.1) next = previousMs / 2;
  else if (share < 0.01) next = previousMs * 2;
  return Math.min(GC_MAX_INTERVAL_MS, Math.max(GC_MIN_INTERVAL_MS, next));
}
