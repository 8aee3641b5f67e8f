/**
 * Map operations against the live (pinned) maps, in the order diff.ts produced them, and the
 * read-back of what the maps hold. The only module of the agent that writes to the kernel.
 */
import type { BpfMap } from '../bpf/map.js';
import type { MapOp } from './diff.js';
import type { BackendValue, Lb4KeyValue } from './plan.js';
import type {
  MapEntries,
  ProgrammedState,
  RevNatValue,
  ServiceValue,
  SlotKey,
} from './programmed.js';
import { registerLbEncoders } from '../datapath/lb-encode.js';
import { programmedFromEntries } from './programmed.js';

// The batch writes encode backends and slot keys by the 100k: with the hand-written encoders.
registerLbEncoders();

/** The load-balancing maps the agent programs (shared by every datapath object). */
export interface LbMapHandles {
  lb4_services: BpfMap<Lb4KeyValue, ServiceValue>;
  lb_slots: BpfMap<SlotKey, number>;
  lb4_backends: BpfMap<number, BackendValue>;
  lb4_reverse_nat: BpfMap<number, RevNatValue>;
  lb4_affinity: BpfMap<{ service_id: number; client_address: string }, { backend_id: number }>;
}

export class ApplyError extends Error {
  constructor(
    readonly op: MapOp,
    readonly index: number,
    readonly applied: number,
    cause: unknown,
  ) {
    super(`${op.map}.${op.op} (operation ${index + 1}): ${(cause as Error).message}`, { cause });
    this.name = 'ApplyError';
  }
}

/**
 * Applies the operations in order. A run of consecutive operations of one kind on one map (a
 * phase of diff.ts, e.g. every backend of a full pass) goes to the kernel as batch updates or
 * deletes: the phases are what make-before-break orders, and inside a phase the order does not
 * matter. When a batch fails, the run is replayed one operation at a time (rewriting or
 * deleting what the batch already did changes nothing), so the failure is still pinned to one
 * operation. On a failure it stops (every prefix is consistent, see diff.ts) and throws
 * ApplyError saying how many were applied; the caller re-reads the maps. Returns the number of
 * affinity entries purged.
 */
export function applyOps(maps: LbMapHandles, ops: readonly MapOp[]): { purged: number } {
  let purged = 0;
  let start = 0;
  while (start < ops.length) {
    const first = ops[start] as MapOp;
    let end = start + 1;
    if (first.map !== 'lb4_affinity') {
      while (end < ops.length) {
        const o = ops[end] as MapOp;
        if (o.map !== first.map || o.op !== first.op) break;
        end++;
      }
    }
    if (end - start < MIN_BATCH || !applyRun(maps, ops, start, end)) {
      for (let index = start; index < end; index++) {
        try {
          purged += applyOne(maps, ops[index] as MapOp);
        } catch (error) {
          throw new ApplyError(ops[index] as MapOp, index, index, error);
        }
      }
    }
    start = end;
  }
  return { purged };
}

/** Below this a run goes one by one: a batch's buffers cost more than a few syscalls. */
const MIN_BATCH = 8;

/** ops[start, end) (one map, one kind) as batch calls; false when a batch call failed. */
function applyRun(maps: LbMapHandles, ops: readonly MapOp[], start: number, end: number): boolean {
  const first = ops[start] as MapOp;
  const map = maps[first.map] as BpfMap<unknown, unknown>;
  try {
    if (first.op === 'update') {
      // The operations are the records: each holds its key and value.
      map.updateBatchRecords(
        ops as readonly (MapOp & { key: unknown; value: unknown })[],
        start,
        end,
      );
    } else if (first.op === 'delete') {
      const keys: unknown[] = new Array<unknown>(end - start);
      for (let i = start; i < end; i++) keys[i - start] = (ops[i] as MapOp & { key: unknown }).key;
      map.deleteBatch(keys);
    } else {
      return false;
    }
    return true;
  } catch {
    return false;
  }
}

function applyOne(maps: LbMapHandles, o: MapOp): number {
  switch (o.map) {
    case 'lb4_backends':
      if (o.op === 'update') maps.lb4_backends.update(o.key, o.value);
      else maps.lb4_backends.delete(o.key);
      return 0;
    case 'lb4_reverse_nat':
      if (o.op === 'update') maps.lb4_reverse_nat.update(o.key, o.value);
      else maps.lb4_reverse_nat.delete(o.key);
      return 0;
    case 'lb_slots':
      if (o.op === 'update') maps.lb_slots.update(o.key, o.value);
      else maps.lb_slots.delete(o.key);
      return 0;
    case 'lb4_services':
      if (o.op === 'update') maps.lb4_services.update(o.key, o.value);
      else maps.lb4_services.delete(o.key);
      return 0;
    case 'lb4_affinity': {
      const doomed: { service_id: number; client_address: string }[] = [];
      for (const [key, value] of maps.lb4_affinity.entries()) {
        if (key.service_id !== o.serviceId) continue;
        if (o.backendIds === 'all' || o.backendIds.includes(value.backend_id)) doomed.push(key);
      }
      for (const key of doomed) maps.lb4_affinity.delete(key);
      return doomed.length;
    }
  }
}

/** What the maps hold now: the agent's starting point, and its truth after a failed apply. */
export function readProgrammed(maps: LbMapHandles): ProgrammedState {
  const entries: MapEntries = {
    services: maps.lb4_services.lookupBatch(),
    slots: maps.lb_slots.lookupBatch(),
    backends: maps.lb4_backends.lookupBatch(),
    revNat: maps.lb4_reverse_nat.lookupBatch(),
  };
  return programmedFromEntries(entries);
}
