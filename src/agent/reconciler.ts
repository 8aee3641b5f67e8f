/**
 * The node's reconcile, full or incremental, between a source's state and the live maps.
 *
 * - full(state): plan every Service, diff against everything programmed (diffDatapath). On
 *   start (adopting the pins: same ids, no flush), after a failed write (the maps were read
 *   back) and when a Node changed (node addresses are part of every backend).
 * - incremental(state, changes): only the Services the changed objects belong to are re-planned
 *   (DesiredState.setService) and only the map entries they affect are diffed (diffScoped) and
 *   written, in the same make-before-break order. One endpoint change costs the same at 1k or
 *   100k services: one Service's views, a few entries.
 *
 * The programmed state and the diff index follow every applied operation; a failed apply throws
 * (ApplyError) and leaves the reconciler needing a full pass from re-read maps (reset()).
 */
import type { ClusterState, EndpointSlice, ObjectKey, Service } from '../model/index.js';
import { objectKey, serviceViews } from '../model/index.js';
import type { SourceChanges } from '../sources/source.js';
import type { LbMapHandles } from './apply.js';
import { applyOps } from './apply.js';
import type { DiffIndex, IdCounters, MapOp } from './diff.js';
import {
  applyInPlace,
  commitScoped,
  countersFor,
  diffDatapath,
  diffScoped,
  indexProgrammed,
} from './diff.js';
import type { AffectedKeys } from './plan.js';
import { DesiredState, noneAffected } from './plan.js';
import type { ProgrammedState } from './programmed.js';

export interface ReconcileOutcome {
  mode: 'full' | 'incremental';
  ops: MapOp[];
  /** Affinity entries purged. */
  purged: number;
  /** Services re-planned (full: every Service of the source). */
  services: number;
  /** Frontends two service ports claim, among those this pass looked at. */
  conflicts: { frontend: string; kept: string; dropped: string }[];
  planMs: number;
  applyMs: number;
}

/** The subset of the load-balancing maps a reconcile writes; tests count the writes. */
export type ReconcileMaps = Pick<
  LbMapHandles,
  'lb4_services' | 'lb_slots' | 'lb4_backends' | 'lb4_reverse_nat' | 'lb4_affinity'
>;

const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e6;

export class Reconciler {
  private desired: DesiredState | undefined;
  private index: DiffIndex | undefined;
  private counters: IdCounters;
  /** Which Service each EndpointSlice (namespace/name) belongs to, and back. */
  private sliceService = new Map<ObjectKey, ObjectKey>();
  private serviceSlices = new Map<ObjectKey, Set<ObjectKey>>();

  constructor(
    private readonly nodeName: string,
    private readonly maps: ReconcileMaps,
    private programmed: ProgrammedState,
  ) {
    this.counters = countersFor(programmed);
  }

  /** What the maps hold, as far as this reconciler knows (kept in step with every write). */
  get state(): ProgrammedState {
    return this.programmed;
  }

  get idCounters(): IdCounters {
    return this.index?.counters ?? this.counters;
  }

  /** Starts over from what the maps hold (after a failed apply): the next pass is full. */
  reset(programmed: ProgrammedState): void {
    this.counters = countersFor(programmed, this.idCounters);
    this.programmed = programmed;
    this.desired = undefined;
    this.index = undefined;
  }

  /** Incremental when it can be (a change set, a previous pass, no Node changed), else full. */
  reconcile(state: ClusterState, changes: SourceChanges | undefined): ReconcileOutcome {
    if (!changes || !this.desired || !this.index || changes.nodes.size > 0) return this.full(state);
    return this.incremental(state, changes);
  }

  full(state: ClusterState): ReconcileOutcome {
    const started = process.hrtime.bigint();
    this.desired = undefined;
    this.index = undefined;
    const desired = DesiredState.fromState(state, this.nodeName, this.indexSlices(state));
    const result = diffDatapath(desired, this.programmed, this.counters);
    const planMs = since(started);
    const t = process.hrtime.bigint();
    const { purged } = applyOps(this.maps, result.ops);
    applyInPlace(this.programmed, result.ops);
    this.counters = result.counters;
    this.index = indexProgrammed(
      this.programmed,
      result.groupIds,
      result.counters,
      result.backendIds,
    );
    this.desired = desired;
    return {
      mode: 'full',
      ops: result.ops,
      purged,
      services: desired.serviceCount(),
      conflicts: desired.conflicts,
      planMs,
      applyMs: since(t),
    };
  }

  incremental(state: ClusterState, changes: SourceChanges): ReconcileOutcome {
    const desired = this.desired;
    const index = this.index;
    if (!desired || !index) return this.full(state);
    const started = process.hrtime.bigint();
    const services = new Set(changes.services);
    for (const slice of changes.endpointSlices) {
      const before = this.sliceService.get(slice);
      if (before !== undefined) services.add(before);
      const now = state.endpointSlices.get(slice);
      const after =
        now && now.serviceName !== '' ? objectKey(now.namespace, now.serviceName) : undefined;
      if (after !== undefined) services.add(after);
      if (before !== after) {
        if (before !== undefined) this.unlinkSlice(slice, before);
        if (after !== undefined) this.linkSlice(slice, after);
      }
    }
    const affected: AffectedKeys = noneAffected();
    for (const key of [...services].sort()) {
      const svc: Service | undefined = state.services.get(key);
      // The slice's own label decides (a source may hold a newer state than its changes say).
      const slices = [...(this.serviceSlices.get(key) ?? [])]
        .map((k) => state.endpointSlices.get(k))
        .filter(
          (s): s is EndpointSlice =>
            s !== undefined && objectKey(s.namespace, s.serviceName) === key,
        );
      const views = svc ? serviceViews(svc, slices, this.nodeName) : [];
      const a = desired.setService(key, views);
      for (const k of a.frontends) affected.frontends.add(k);
      for (const k of a.groups) affected.groups.add(k);
      for (const k of a.backends) affected.backends.add(k);
    }
    const result = diffScoped(desired, this.programmed, index, affected);
    const planMs = since(started);
    const t = process.hrtime.bigint();
    let purged: number;
    try {
      purged = applyOps(this.maps, result.ops).purged;
    } catch (error) {
      // The desired state moved on but the maps did not all follow: only a full pass from the
      // maps (reset) knows what is there.
      this.desired = undefined;
      throw error;
    }
    applyInPlace(this.programmed, result.ops, index);
    commitScoped(index, result);
    return {
      mode: 'incremental',
      ops: result.ops,
      purged,
      services: services.size,
      conflicts: [...affected.frontends].flatMap((fe) => desired.conflictsOf(fe)),
      planMs,
      applyMs: since(t),
    };
  }

  /**
   * Indexes which Service each EndpointSlice belongs to, and returns the slices by Service
   * (endpointSlicesByService) for the full plan: one pass and one key of each slice for both.
   */
  private indexSlices(state: ClusterState): Map<ObjectKey, EndpointSlice[]> {
    this.sliceService = new Map();
    this.serviceSlices = new Map();
    const byService = new Map<ObjectKey, EndpointSlice[]>();
    state.endpointSlices.forEach((slice, key) => {
      if (slice.serviceName === '') return;
      const service = objectKey(slice.namespace, slice.serviceName);
      this.linkSlice(key, service);
      const list = byService.get(service);
      if (list) list.push(slice);
      else byService.set(service, [slice]);
    });
    return byService;
  }

  private linkSlice(slice: ObjectKey, service: ObjectKey): void {
    this.sliceService.set(slice, service);
    let set = this.serviceSlices.get(service);
    if (!set) {
      set = new Set();
      this.serviceSlices.set(service, set);
    }
    set.add(slice);
  }

  private unlinkSlice(slice: ObjectKey, service: ObjectKey): void {
    this.sliceService.delete(slice);
    const set = this.serviceSlices.get(service);
    set?.delete(slice);
    if (set?.size === 0) this.serviceSlices.delete(service);
  }
}
