/**
 * What the load-balancing maps hold, as plain data: read from the pinned maps on start (that is
 * how a restarted agent adopts its predecessor's work), then kept in step with every operation
 * the agent applies. Pure, so the diff and the golden tests run without a kernel.
 */
import type { BackendValue, FrontendKey, Lb4KeyValue } from './plan.js';
import { frontendKey } from './plan.js';
import { SlotList } from './slot-list.js';

export interface ServiceValue {
  service_id: number;
  rev_nat_id: number;
  backend_count: number;
  flags: number;
  affinity_timeout: number;
}

export interface RevNatValue {
  address: string;
  port: number;
}

export interface SlotKey {
  service_id: number;
  slot: number;
}

export interface ProgrammedState {
  services: Map<FrontendKey, { key: Lb4KeyValue; value: ServiceValue }>;
  /** service_id -> slot -> backend_id (a SlotList each: slot-list.ts) */
  slots: Map<number, Map<number, number>>;
  backends: Map<number, BackendValue>;
  revNat: Map<number, RevNatValue>;
}

/** The raw entries of the four maps, as BpfMap.lookupBatch returns them. */
export interface MapEntries {
  services: readonly (readonly [Lb4KeyValue, ServiceValue])[];
  slots: readonly (readonly [SlotKey, number])[];
  backends: readonly (readonly [number, BackendValue])[];
  revNat: readonly (readonly [number, RevNatValue])[];
}

export function emptyProgrammed(): ProgrammedState {
  return { services: new Map(), slots: new Map(), backends: new Map(), revNat: new Map() };
}

export function programmedFromEntries(entries: MapEntries): ProgrammedState {
  const state = emptyProgrammed();
  for (const [key, value] of entries.services) {
    state.services.set(frontendKey(key), { key: { ...key }, value: { ...value } });
  }
  for (const [key, backend] of entries.slots) setSlot(state, key, backend);
  for (const [id, value] of entries.backends) state.backends.set(id, { ...value });
  for (const [id, value] of entries.revNat) state.revNat.set(id, { ...value });
  return state;
}

export function cloneProgrammed(state: ProgrammedState): ProgrammedState {
  return {
    services: new Map([...state.services].map(([k, v]) => [k, { key: v.key, value: v.value }])),
    slots: new Map([...state.slots].map(([k, v]) => [k, new SlotList(v)])),
    backends: new Map(state.backends),
    revNat: new Map(state.revNat),
  };
}

export function setSlot(state: ProgrammedState, key: SlotKey, backendId: number): void {
  slotsFor(state, key.service_id).set(key.slot, backendId);
}

/** The slots of a service id, an empty map added for it when it has none. */
export function slotsFor(state: ProgrammedState, serviceId: number): Map<number, number> {
  let slots = state.slots.get(serviceId);
  if (!slots) {
    slots = new SlotList();
    state.slots.set(serviceId, slots);
  }
  return slots;
}

export function deleteSlot(state: ProgrammedState, key: SlotKey): void {
  const slots = state.slots.get(key.service_id);
  if (!slots) return;
  slots.delete(key.slot);
  if (slots.size === 0) state.slots.delete(key.service_id);
}

/** Number of entries, per map: for logs, health and tests. */
export function programmedSize(state: ProgrammedState): Record<string, number> {
  let slots = 0;
  for (const s of state.slots.values()) slots += s.size;
  return {
    lb4_services: state.services.size,
    lb_slots: slots,
    lb4_backends: state.backends.size,
    lb4_reverse_nat: state.revNat.size,
  };
}
