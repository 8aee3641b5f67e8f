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
import { programmedFromEntries } from './programmed.js';

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
 * Applies the operations one by one. On a failure it stops (every prefix is consistent, see
 * diff.ts) and throws ApplyError saying how many were applied; the caller re-reads the maps.
 * Returns the number of affinity entries purged.
 */
export function applyOps(maps: LbMapHandles, ops: readonly MapOp[]): { purged: number } {
  let purged = 0;
  ops.forEach((op, index) => {
    try {
      purged += applyOne(maps, op);
    } catch (error) {
      throw new ApplyError(op, index, index, error);
    }
  });
  return { purged };
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
