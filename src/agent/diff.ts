/**
 * Programmed vs desired -> the ordered map operations that turn one into the other (pure).
 *
 * Make-before-break, as one global order of phases, so that every prefix of the list leaves a
 * consistent datapath (an agent killed half-way, or a failed write, never leaves a frontend
 * pointing at a slot or a backend that is not there):
 *
 *   1. backends written (new ones, changed flags)      5. frontends removed
 *   2. reverse-NAT entries written                     6. stale slots removed (tails, retired ids)
 *   3. slots written (appended, holes refilled)        7. affinity entries of removed backends
 *   4. frontends written (count, flags, service id)    8. stale reverse-NAT entries removed
 *                                                      9. unreferenced backends removed
 *
 * Minimal change: a group keeps its slot order; a removed backend's slot is refilled by the
 * last one (swap-remove), an added backend is appended. So one endpoint change costs one slot
 * write or delete, a backend write or delete, and one count update per frontend of the group,
 * whatever the number of services. Adding a service writes only its own entries.
 *
 * Ids: a group keeps the service_id its frontends have in the maps, a backend the id its
 * (address, port, proto) has, a frontend its rev_nat_id; new ids count up from the highest
 * seen and are not reused while the agent runs, so an affinity or conntrack entry naming an old
 * id never lands on a different backend or frontend. After a restart the ids are read back
 * from the maps, so adoption rewrites nothing.
 */
import { LbServiceFlag } from '../datapath/lb.js';
import type {
  AffectedKeys,
  BackendKey,
  BackendValue,
  DatapathPlan,
  FrontendKey,
  GroupKey,
  Lb4KeyValue,
  PlannedFrontend,
} from './plan.js';
import { backendKey, frontendKey } from './plan.js';
import { compareBackendKeys } from './backend-key.js';
import { BackendMap } from './backend-map.js';
import type { ProgrammedState, RevNatValue, ServiceValue, SlotKey } from './programmed.js';
import { cloneProgrammed, deleteSlot, slotsFor } from './programmed.js';

export type MapOp =
  | { map: 'lb4_backends'; op: 'update'; key: number; value: BackendValue }
  | { map: 'lb4_backends'; op: 'delete'; key: number }
  | { map: 'lb4_reverse_nat'; op: 'update'; key: number; value: RevNatValue }
  | { map: 'lb4_reverse_nat'; op: 'delete'; key: number }
  | { map: 'lb_slots'; op: 'update'; key: SlotKey; value: number }
  | { map: 'lb_slots'; op: 'delete'; key: SlotKey }
  | { map: 'lb4_services'; op: 'update'; key: Lb4KeyValue; value: ServiceValue }
  | { map: 'lb4_services'; op: 'delete'; key: Lb4KeyValue }
  /** Drop the affinity entries of a service id that name these backends (all: every entry). */
  | { map: 'lb4_affinity'; op: 'purge'; serviceId: number; backendIds: number[] | 'all' };

export interface IdCounters {
  nextServiceId: number;
  nextBackendId: number;
  nextRevNatId: number;
}

export interface DiffResult {
  ops: MapOp[];
  /** Counters after this diff's allocations: hand them to the next diff. */
  counters: IdCounters;
  groupIds: Map<GroupKey, number>;
  backendIds: Map<BackendKey, number>;
}

/** Counters that never go below what the maps hold (restart) or what was handed out (run). */
export function countersFor(programmed: ProgrammedState, previous?: IdCounters): IdCounters {
  let service = 0;
  let revNat = 0;
  for (const { value } of programmed.services.values()) {
    service = Math.max(service, value.service_id);
    revNat = Math.max(revNat, value.rev_nat_id);
  }
  for (const id of programmed.slots.keys()) service = Math.max(service, id);
  for (const id of programmed.revNat.keys()) revNat = Math.max(revNat, id);
  let backend = 0; // a loop: spreading a million keys into Math.max overflows the stack
  for (const id of programmed.backends.keys()) backend = Math.max(backend, id);
  return {
    nextServiceId: Math.max(service + 1, previous?.nextServiceId ?? 1),
    nextBackendId: Math.max(backend + 1, previous?.nextBackendId ?? 1),
    nextRevNatId: Math.max(revNat + 1, previous?.nextRevNatId ?? 1),
  };
}

export function diffDatapath(
  plan: DatapathPlan,
  programmed: ProgrammedState,
  previous?: IdCounters,
): DiffResult {
  const counters = countersFor(programmed, previous);

  const phase = emptyPhases();

  // Backend ids: by (address, port, proto) as programmed; the lowest id wins a duplicate.
  // 1. Backends, in the same pass: one visit of each of a million backends, not two.
  const backendIds = lowestBackendIds(programmed);
  const wantedBackendIds = new BackendMap<number>(undefined, plan.backends.size);
  // forEach, not for-of over entries: no [key, value] array per backend.
  plan.backends.forEach((value, key) => {
    let id = backendIds.get(key);
    if (id === undefined) id = counters.nextBackendId++;
    wantedBackendIds.set(key, id);
    if (!sameBackend(programmed.backends.get(id), value)) {
      phase.backends.push({ map: 'lb4_backends', op: 'update', key: id, value });
    }
  });

  // Service ids: a group adopts the id its programmed frontends use, unless a group earlier in
  // order took it (a policy change split a group): then it gets a fresh one.
  const groupIds = new Map<GroupKey, number>();
  const taken = new Set<number>();
  const candidates = new Map<GroupKey, number[]>();
  // forEach, not for-of over values(), here and below: no iterator result per frontend.
  plan.frontends.forEach((fe) => {
    const id = programmed.services.get(fe.id)?.value.service_id;
    if (id !== undefined) candidates.set(fe.group, [...(candidates.get(fe.group) ?? []), id]);
  });
  const groupsInOrder = [...plan.groups.keys()].sort(compare);
  for (const group of groupsInOrder) {
    const id = (candidates.get(group) ?? []).sort((a, b) => a - b).find((c) => !taken.has(c));
    if (id !== undefined) {
      groupIds.set(group, id);
      taken.add(id);
    }
  }
  for (const group of groupsInOrder) {
    if (!groupIds.has(group)) groupIds.set(group, counters.nextServiceId++);
  }

  // Reverse-NAT ids: per frontend, kept from the maps; 2. reverse NAT; and the groups with
  // affinity (for 3): one visit of each frontend.
  const revNatIds = new Map<FrontendKey, number>();
  const affinityGroups = new Set<GroupKey>();
  plan.frontends.forEach((fe) => {
    const programmedId = programmed.services.get(fe.id)?.value.rev_nat_id;
    const id =
      programmedId !== undefined && programmedId > 0 ? programmedId : counters.nextRevNatId++;
    revNatIds.set(fe.id, id);
    const value = { address: fe.key.address, port: fe.key.dport };
    const current = programmed.revNat.get(id);
    if (current?.address !== value.address || current.port !== value.port) {
      phase.revNat.push({ map: 'lb4_reverse_nat', op: 'update', key: id, value });
    }
    if (fe.affinityTimeout > 0) affinityGroups.add(fe.group);
  });

  // 3. Slots, group by group; 6 and 7 for what the groups drop.
  const programmedCounts = new Map<number, number>();
  for (const { value } of programmed.services.values()) {
    const seen = programmedCounts.get(value.service_id) ?? 0;
    programmedCounts.set(value.service_id, Math.max(seen, value.backend_count));
  }
  const counts = new Map<number, number>();
  const liveServiceIds = new Set(groupIds.values());
  for (const group of groupsInOrder) {
    const serviceId = groupIds.get(group) as number;
    const keys = plan.groups.get(group)?.backends ?? [];
    const current = programmed.slots.get(serviceId);
    if (current === undefined) {
      // Nothing programmed for this id (a first pass): every wanted backend gets the next slot.
      // A group lists each backend key once and each key has its own id: no duplicate to drop.
      counts.set(serviceId, keys.length);
      for (let i = 0; i < keys.length; i++) {
        phase.slotWrites.push({
          map: 'lb_slots',
          op: 'update',
          key: { service_id: serviceId, slot: i + 1 },
          value: wantedBackendIds.get(keys[i] as BackendKey) as number,
        });
      }
      continue;
    }
    const wanted = keys.map((k) => wantedBackendIds.get(k) as number);
    const live = liveCount(programmedCounts.get(serviceId) ?? 0, current);
    const next = arrangeSlots(current, live, wanted);
    counts.set(serviceId, next.length);
    const dropped = pushSlotOps(phase, serviceId, current, next);
    if (dropped.length > 0 && affinityGroups.has(group)) {
      phase.affinity.push({
        map: 'lb4_affinity',
        op: 'purge',
        serviceId,
        backendIds: dropped.sort((a, b) => a - b),
      });
    }
  }
  for (const [serviceId, slots] of [...programmed.slots].sort((a, b) => a[0] - b[0])) {
    if (liveServiceIds.has(serviceId)) continue;
    for (const slot of [...slots.keys()].sort((a, b) => a - b)) {
      phase.slotDeletes.push({
        map: 'lb_slots',
        op: 'delete',
        key: { service_id: serviceId, slot },
      });
    }
  }
  // Affinity entries of a retired service id would outlive it in the LRU map for nothing.
  const retired = new Set<number>();
  for (const { value } of programmed.services.values()) {
    if (!liveServiceIds.has(value.service_id) && value.flags & LbServiceFlag.AFFINITY) {
      retired.add(value.service_id);
    }
  }
  for (const serviceId of [...retired].sort((a, b) => a - b)) {
    phase.affinity.push({ map: 'lb4_affinity', op: 'purge', serviceId, backendIds: 'all' });
  }

  // 4. Frontends.
  plan.frontends.forEach((fe) => {
    const serviceId = groupIds.get(fe.group) as number;
    const value: ServiceValue = {
      service_id: serviceId,
      rev_nat_id: revNatIds.get(fe.id) as number,
      backend_count: counts.get(serviceId) ?? 0,
      flags: fe.flags,
      affinity_timeout: fe.affinityTimeout,
    };
    if (!sameService(programmed.services.get(fe.id)?.value, value)) {
      phase.services.push({ map: 'lb4_services', op: 'update', key: fe.key, value });
    }
  });

  // 5. Frontends that went away.
  for (const [id, { key }] of programmed.services) {
    if (!plan.frontends.has(id))
      phase.serviceDeletes.push({ map: 'lb4_services', op: 'delete', key });
  }

  // 8. Reverse NAT of frontends that went away.
  const liveRevNat = programmed.revNat.size === 0 ? new Set() : new Set(revNatIds.values());
  for (const id of [...programmed.revNat.keys()].sort((a, b) => a - b)) {
    if (!liveRevNat.has(id))
      phase.revNatDeletes.push({ map: 'lb4_reverse_nat', op: 'delete', key: id });
  }

  // 9. Backends no group uses.
  const liveBackends =
    programmed.backends.size === 0 ? new Set() : new Set(wantedBackendIds.values());
  for (const id of [...programmed.backends.keys()].sort((a, b) => a - b)) {
    if (!liveBackends.has(id))
      phase.backendDeletes.push({ map: 'lb4_backends', op: 'delete', key: id });
  }

  return {
    ops: inPhaseOrder(phase),
    counters,
    groupIds,
    backendIds: wantedBackendIds,
  };
}

/**
 * A diff's operations by make-before-break phase: backends and reverse NAT before the slots
 * that name them, slots before the frontends that count them, deletions in the reverse order.
 */
interface Phases {
  backends: MapOp[];
  revNat: MapOp[];
  slotWrites: MapOp[];
  services: MapOp[];
  serviceDeletes: MapOp[];
  slotDeletes: MapOp[];
  affinity: MapOp[];
  revNatDeletes: MapOp[];
  backendDeletes: MapOp[];
}

function emptyPhases(): Phases {
  return {
    backends: [],
    revNat: [],
    slotWrites: [],
    services: [],
    serviceDeletes: [],
    slotDeletes: [],
    affinity: [],
    revNatDeletes: [],
    backendDeletes: [],
  };
}

function inPhaseOrder(p: Phases): MapOp[] {
  // concat, not spreads: a spread walks an iterator over each of a full pass's 200k operations.
  return p.backends.concat(
    p.revNat,
    p.slotWrites,
    p.services,
    p.serviceDeletes,
    p.slotDeletes,
    p.affinity,
    p.revNatDeletes,
    p.backendDeletes,
  );
}

/** The slot writes and deletes that turn a service's `current` slots into `next`; returns the
 * backends no slot keeps. */
function pushSlotOps(
  phase: Phases,
  serviceId: number,
  current: ReadonlyMap<number, number>,
  next: readonly number[],
): number[] {
  next.forEach((backendId, i) => {
    const slot = i + 1;
    if (current.get(slot) !== backendId) {
      phase.slotWrites.push({
        map: 'lb_slots',
        op: 'update',
        key: { service_id: serviceId, slot },
        value: backendId,
      });
    }
  });
  for (const slot of [...current.keys()].sort((a, b) => a - b)) {
    if (slot > next.length) {
      phase.slotDeletes.push({
        map: 'lb_slots',
        op: 'delete',
        key: { service_id: serviceId, slot },
      });
    }
  }
  const kept = new Set(next);
  return [...new Set(current.values())].filter((b) => !kept.has(b));
}

/** Backend id per (address, port, proto) as programmed; the lowest id wins a duplicate. */
function lowestBackendIds(programmed: ProgrammedState): Map<BackendKey, number> {
  // One pass keeping the minimum, not a sort of every backend: a million at 100k services.
  const ids = new BackendMap<number>();
  programmed.backends.forEach((b, id) => {
    const key = backendKey(b.address, b.port, b.proto);
    const seen = ids.get(key);
    if (seen === undefined || id < seen) ids.set(key, id);
  });
  return ids;
}

/**
 * How many slots of a service id are in use: the highest count a frontend of it has, as far as
 * the slots are there. Slots past it are leftovers of an interrupted shrink and are deleted.
 */
function liveCount(count: number, slots: ReadonlyMap<number, number>): number {
  let contiguous = 0;
  while (contiguous < count && slots.has(contiguous + 1)) contiguous++;
  return contiguous;
}

/**
 * The new slot list (index 0 is slot 1): backends that stay keep their slot when it is still
 * inside the list; holes are refilled by backends from past the end, then by new ones.
 */
export function arrangeSlots(
  current: ReadonlyMap<number, number>,
  liveCount: number,
  wanted: readonly number[],
): number[] {
  const want = new Set(wanted);
  const size = want.size;
  const next: (number | undefined)[] = new Array<number | undefined>(size).fill(undefined);
  const placed = new Set<number>();
  for (let slot = 1; slot <= Math.min(liveCount, size); slot++) {
    const b = current.get(slot);
    if (b !== undefined && want.has(b) && !placed.has(b)) {
      next[slot - 1] = b;
      placed.add(b);
    }
  }
  // Movers first (from the highest slot down, like a swap-remove), then new backends in order.
  const movers: number[] = [];
  for (let slot = liveCount; slot > size; slot--) {
    const b = current.get(slot);
    if (b !== undefined && want.has(b) && !placed.has(b)) {
      movers.push(b);
      placed.add(b);
    }
  }
  const fresh = wanted.filter((b) => !placed.has(b));
  const fill = [...movers, ...new Set(fresh)];
  let from = 0; // not fill.shift(): that is O(n) a call, O(n^2) for a large group
  for (let i = 0; i < size; i++) if (next[i] === undefined) next[i] = fill[from++];
  return next as number[];
}

function sameBackend(a: BackendValue | undefined, b: BackendValue): boolean {
  return (
    a !== undefined &&
    a.address === b.address &&
    a.port === b.port &&
    a.proto === b.proto &&
    a.flags === b.flags &&
    a.node_address === b.node_address
  );
}

function sameService(a: ServiceValue | undefined, b: ServiceValue): boolean {
  return (
    a !== undefined &&
    a.service_id === b.service_id &&
    a.rev_nat_id === b.rev_nat_id &&
    a.backend_count === b.backend_count &&
    a.flags === b.flags &&
    a.affinity_timeout === b.affinity_timeout
  );
}

/** The maps after the operations (what the kernel holds once they are applied). */
export function applyToProgrammed(state: ProgrammedState, ops: readonly MapOp[]): ProgrammedState {
  const next = cloneProgrammed(state);
  applyInPlace(next, ops);
  return next;
}

/** Operations per map and kind, e.g. { 'lb_slots.update': 1 }: for logs and tests. */
export function countOps(ops: readonly MapOp[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of ops) out[`${o.map}.${o.op}`] = (out[`${o.map}.${o.op}`] ?? 0) + 1;
  return out;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What the incremental diff looks up besides the programmed maps, so that it never visits
 * what a change did not touch. Built from the maps after a full diff (indexProgrammed) and kept
 * in step by applyInPlace and commitScoped.
 */
export interface DiffIndex {
  /** Backend id per (address, port, proto), as programmed. */
  backendIds: Map<BackendKey, number>;
  /** Programmed frontends per service id. */
  frontendsByServiceId: Map<number, Set<FrontendKey>>;
  /** The service id of each group of the plan, and back. */
  groupIds: Map<GroupKey, number>;
  groupOfServiceId: Map<number, GroupKey>;
  counters: IdCounters;
}

/** The index of what a full diff left programmed (O(entries), once per start or full sync). */
export function indexProgrammed(
  programmed: ProgrammedState,
  groupIds: ReadonlyMap<GroupKey, number>,
  counters: IdCounters,
  /** The backend ids of a full diff just applied (DiffResult.backendIds): exactly what the
   * maps then hold, so they need not be derived again. The index takes this map over (it is
   * kept in step from then on): a copy of a million entries would cost more than the diff. */
  backendIds?: Map<BackendKey, number>,
): DiffIndex {
  const groupOfServiceId = new Map<number, GroupKey>();
  groupIds.forEach((id, g) => groupOfServiceId.set(id, g));
  const index: DiffIndex = {
    backendIds: backendIds ?? lowestBackendIds(programmed),
    frontendsByServiceId: new Map(),
    groupIds: new Map(groupIds),
    groupOfServiceId,
    counters: { ...counters },
  };
  // forEach, not for-of over entries: no [key, value] array per entry.
  programmed.services.forEach(({ value }, fe) => indexFrontend(index, fe, value.service_id));
  return index;
}

function indexFrontend(index: DiffIndex, fe: FrontendKey, serviceId: number): void {
  let set = index.frontendsByServiceId.get(serviceId);
  if (!set) {
    set = new Set();
    index.frontendsByServiceId.set(serviceId, set);
  }
  set.add(fe);
}

function unindexFrontend(index: DiffIndex, fe: FrontendKey, serviceId: number): void {
  const set = index.frontendsByServiceId.get(serviceId);
  set?.delete(fe);
  if (set?.size === 0) index.frontendsByServiceId.delete(serviceId);
}

export interface ScopedDiff {
  ops: MapOp[];
  counters: IdCounters;
  /** Service ids of the groups in scope: a number, or null for a group that is gone. */
  groupIds: Map<GroupKey, number | null>;
}

/**
 * The operations that bring the entries of the affected keys (plan.ts AffectedKeys) from what
 * is programmed to the plan, in the phase order of diffDatapath (make-before-break), visiting
 * nothing else: O(size of the change), whatever the number of services. Entries outside the
 * scope are assumed to match the plan, which holds after a full diff and every scoped one that
 * was applied; after a failed apply the agent reads the maps back and runs a full diff.
 *
 * Same rules as diffDatapath: a group keeps its service id, a frontend its reverse-NAT id, a
 * backend its id; a new group adopts the service id its frontends have in the maps when no
 * other group holds it (a policy change); slots keep their order (swap-remove, append).
 */
export function diffScoped(
  plan: DatapathPlan,
  programmed: ProgrammedState,
  index: DiffIndex,
  affected: AffectedKeys,
): ScopedDiff {
  const counters = { ...index.counters };
  const frontends = [...affected.frontends].sort(compare);
  const groupSet = new Set(affected.groups);
  for (const id of frontends) {
    const fe = plan.frontends.get(id);
    if (fe) groupSet.add(fe.group);
  }
  const groups = [...groupSet].sort(compare);
  const backendSet = new Set(affected.backends);
  for (const g of groups) for (const b of plan.groups.get(g)?.backends ?? []) backendSet.add(b);
  const backends = [...backendSet].sort(compareBackendKeys);

  // Ids.
  const backendIds = new Map<BackendKey, number>();
  for (const b of backends) {
    if (plan.backends.has(b))
      backendIds.set(b, index.backendIds.get(b) ?? counters.nextBackendId++);
  }
  const groupIds = new Map<GroupKey, number | null>();
  const freed = new Set<number>();
  for (const g of groups) {
    const id = index.groupIds.get(g);
    if (plan.groups.has(g)) {
      if (id !== undefined) groupIds.set(g, id);
    } else {
      groupIds.set(g, null);
      if (id !== undefined) freed.add(id);
    }
  }
  const assigned = new Set<number>();
  const held = (id: number): boolean =>
    assigned.has(id) || (index.groupOfServiceId.has(id) && !freed.has(id));
  const candidates = new Map<GroupKey, number[]>();
  for (const id of frontends) {
    const fe = plan.frontends.get(id);
    const current = programmed.services.get(id)?.value.service_id;
    if (fe && current !== undefined && !groupIds.has(fe.group)) {
      candidates.set(fe.group, [...(candidates.get(fe.group) ?? []), current]);
    }
  }
  for (const g of groups) {
    if (groupIds.has(g)) continue;
    const adopted = (candidates.get(g) ?? []).sort((a, b) => a - b).find((c) => !held(c));
    const id = adopted ?? counters.nextServiceId++;
    assigned.add(id);
    groupIds.set(g, id);
  }
  const liveAfter = (id: number): boolean => held(id) || [...groupIds.values()].includes(id);
  const revNatIds = new Map<FrontendKey, number>();
  for (const id of frontends) {
    if (!plan.frontends.has(id)) continue;
    const current = programmed.services.get(id)?.value.rev_nat_id;
    revNatIds.set(id, current !== undefined && current > 0 ? current : counters.nextRevNatId++);
  }

  const phase = emptyPhases();

  // 1. Backends; 9. those no group uses any more.
  for (const b of backends) {
    const value = plan.backends.get(b);
    const id = backendIds.get(b);
    if (value && id !== undefined) {
      if (!sameBackend(programmed.backends.get(id), value)) {
        phase.backends.push({ map: 'lb4_backends', op: 'update', key: id, value });
      }
    } else {
      const old = index.backendIds.get(b);
      if (old !== undefined && programmed.backends.has(old)) {
        phase.backendDeletes.push({ map: 'lb4_backends', op: 'delete', key: old });
      }
    }
  }

  // 2. Reverse NAT; 8. that of frontends that went away.
  for (const [id, revNatId] of revNatIds) {
    const fe = plan.frontends.get(id) as PlannedFrontend;
    const value = { address: fe.key.address, port: fe.key.dport };
    const current = programmed.revNat.get(revNatId);
    if (current?.address !== value.address || current.port !== value.port) {
      phase.revNat.push({ map: 'lb4_reverse_nat', op: 'update', key: revNatId, value });
    }
  }

  // 3. Slots of the groups in scope; 6 and 7 for what they drop and for retired service ids.
  const counts = new Map<number, number>();
  for (const g of groups) {
    const group = plan.groups.get(g);
    const serviceId = groupIds.get(g);
    if (!group || serviceId === null || serviceId === undefined) continue;
    const wanted = group.backends.map(
      (b) => backendIds.get(b) ?? (index.backendIds.get(b) as number),
    );
    const current = programmed.slots.get(serviceId) ?? new Map<number, number>();
    let programmedCount = 0;
    let affinity = false;
    for (const fe of index.frontendsByServiceId.get(serviceId) ?? []) {
      const value = programmed.services.get(fe)?.value;
      if (!value) continue;
      programmedCount = Math.max(programmedCount, value.backend_count);
      if (value.flags & LbServiceFlag.AFFINITY) affinity = true;
    }
    for (const id of frontends) {
      const fe = plan.frontends.get(id);
      if (fe?.group === g && fe.affinityTimeout > 0) affinity = true;
    }
    const next = arrangeSlots(current, liveCount(programmedCount, current), wanted);
    counts.set(serviceId, next.length);
    const dropped = pushSlotOps(phase, serviceId, current, next);
    if (dropped.length > 0 && affinity) {
      phase.affinity.push({
        map: 'lb4_affinity',
        op: 'purge',
        serviceId,
        backendIds: dropped.sort((a, b) => a - b),
      });
    }
  }
  const retiring = new Set(freed);
  for (const id of frontends) {
    const current = programmed.services.get(id)?.value.service_id;
    if (current !== undefined) retiring.add(current);
  }
  for (const serviceId of [...retiring].sort((a, b) => a - b)) {
    if (liveAfter(serviceId)) continue;
    for (const slot of [...(programmed.slots.get(serviceId)?.keys() ?? [])].sort((a, b) => a - b)) {
      phase.slotDeletes.push({
        map: 'lb_slots',
        op: 'delete',
        key: { service_id: serviceId, slot },
      });
    }
    const hadAffinity = [...(index.frontendsByServiceId.get(serviceId) ?? [])].some(
      (fe) => (programmed.services.get(fe)?.value.flags ?? 0) & LbServiceFlag.AFFINITY,
    );
    if (hadAffinity) {
      phase.affinity.push({ map: 'lb4_affinity', op: 'purge', serviceId, backendIds: 'all' });
    }
  }

  // 4. Frontends; 5. those that went away (and 8. their reverse NAT).
  for (const id of frontends) {
    const fe = plan.frontends.get(id);
    const current = programmed.services.get(id);
    if (!fe) {
      if (current) {
        phase.serviceDeletes.push({ map: 'lb4_services', op: 'delete', key: current.key });
        const revNat = current.value.rev_nat_id;
        if (revNat > 0 && programmed.revNat.has(revNat)) {
          phase.revNatDeletes.push({ map: 'lb4_reverse_nat', op: 'delete', key: revNat });
        }
      }
      continue;
    }
    const serviceId = groupIds.get(fe.group) as number;
    const value: ServiceValue = {
      service_id: serviceId,
      rev_nat_id: revNatIds.get(id) as number,
      backend_count: counts.get(serviceId) ?? 0,
      flags: fe.flags,
      affinity_timeout: fe.affinityTimeout,
    };
    if (!sameService(current?.value, value)) {
      phase.services.push({ map: 'lb4_services', op: 'update', key: fe.key, value });
    }
  }

  return {
    ops: inPhaseOrder(phase),
    counters,
    groupIds,
  };
}

/** Records a scoped diff's id assignments in the index (once its operations are applied). */
export function commitScoped(index: DiffIndex, diff: ScopedDiff): void {
  for (const [g, id] of diff.groupIds) {
    const old = index.groupIds.get(g);
    if (old !== undefined && index.groupOfServiceId.get(old) === g)
      index.groupOfServiceId.delete(old);
    if (id === null) {
      index.groupIds.delete(g);
    } else {
      index.groupIds.set(g, id);
      index.groupOfServiceId.set(id, g);
    }
  }
  index.counters = { ...diff.counters };
}

/**
 * Applies operations to the programmed state in place (O(operations)), keeping the index, when
 * given, in step. What the agent does after every successful apply.
 */
export function applyInPlace(
  state: ProgrammedState,
  ops: readonly MapOp[],
  index?: DiffIndex,
): void {
  // The slots of the service the last slot write went to: a group's writes come one after
  // another, so one lookup per group instead of one per slot (100k in a full pass).
  let slotsId = -1;
  let slotsOf: Map<number, number> | undefined;
  // An index loop: no iterator step per operation (a full pass applies 200k of them).
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i] as MapOp;
    switch (o.map) {
      case 'lb4_backends': {
        // Without an index (a full pass) nothing else is looked up or keyed per backend.
        const old = index ? state.backends.get(o.key) : undefined;
        if (old && index) {
          const key = backendKey(old.address, old.port, old.proto);
          if (index.backendIds.get(key) === o.key) index.backendIds.delete(key);
        }
        if (o.op === 'update') {
          // Values are never mutated once planned (cloneProgrammed shares them too): no copy
          // of each of a million backends.
          state.backends.set(o.key, o.value);
          if (index) {
            const key = backendKey(o.value.address, o.value.port, o.value.proto);
            if (!index.backendIds.has(key)) index.backendIds.set(key, o.key);
          }
        } else {
          state.backends.delete(o.key);
        }
        break;
      }
      case 'lb4_reverse_nat':
        if (o.op === 'update') state.revNat.set(o.key, o.value);
        else state.revNat.delete(o.key);
        break;
      case 'lb_slots':
        if (o.op === 'update') {
          if (slotsOf === undefined || o.key.service_id !== slotsId) {
            slotsId = o.key.service_id;
            slotsOf = slotsFor(state, slotsId);
          }
          slotsOf.set(o.key.slot, o.value);
        } else {
          deleteSlot(state, o.key);
          slotsOf = undefined; // the delete may have dropped that service's map
        }
        break;
      case 'lb4_services': {
        const id = frontendKey(o.key);
        const old = index ? state.services.get(id) : undefined;
        if (old && index) unindexFrontend(index, id, old.value.service_id);
        if (o.op === 'update') {
          state.services.set(id, { key: o.key, value: o.value });
          if (index) indexFrontend(index, id, o.value.service_id);
        } else {
          state.services.delete(id);
        }
        break;
      }
      case 'lb4_affinity':
        break; // not part of the programmed state: the datapath owns its entries
    }
  }
}
