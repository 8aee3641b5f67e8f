/**
 * The agent's Maglev step (externalBackendSelection: maglev): after each reconcile has written
 * backends, slots and frontends, every backend group that has an external frontend (NodePort,
 * LoadBalancer, externalIP) gets the Maglev table of its backends in lb_maglev
 * (src/datapath/maglev.ts); groups that lost their external frontends or their backends lose it.
 *
 * Input is what is programmed (ProgrammedState), not the plan: it carries the service ids and
 * backend ids the tables must name, whatever computed them, and is what a restarted agent reads
 * back. Backends are named `<address>:<port>/<PROTO>` (the agent's BackendKey), which every node
 * derives identically from the same EndpointSlices, so every node computes the same table.
 *
 * Order: the reconcile writes new backends before this runs (a table never names a backend that
 * is not there yet); a removed backend is deleted by the reconcile just before its slots here
 * are rewritten, and for that moment the datapath serves a new flow hashing to such a slot from
 * a random slot instead (maglev.h).
 */
import type { Logger } from 'pino';
import type { BpfMap } from '../bpf/map.js';
import { LbScope } from '../datapath/lb.js';
import type { MaglevMember, MaglevSyncStats } from '../datapath/maglev.js';
import { MaglevTables } from '../datapath/maglev.js';
import type { AgentConfig } from './config.js';
import { backendNameOf } from './backend-key.js';
import type { ProgrammedState } from './programmed.js';

/** service_id -> its members, for every service id that has an external frontend. */
export function maglevDesired(programmed: ProgrammedState): Map<number, MaglevMember[]> {
  const counts = new Map<number, number>();
  for (const { key, value } of programmed.services.values()) {
    if (key.scope !== LbScope.EXTERNAL) continue;
    counts.set(value.service_id, Math.max(counts.get(value.service_id) ?? 0, value.backend_count));
  }
  const desired = new Map<number, MaglevMember[]>();
  for (const [serviceId, count] of [...counts].sort(([a], [b]) => a - b)) {
    const slots = programmed.slots.get(serviceId);
    const members: MaglevMember[] = [];
    const seen = new Set<number>();
    for (let slot = 1; slot <= count; slot++) {
      const id = slots?.get(slot);
      if (id === undefined || seen.has(id)) continue;
      const b = programmed.backends.get(id);
      if (!b) continue;
      seen.add(id);
      members.push({ name: backendNameOf(b.address, b.port, b.proto), id });
    }
    desired.set(serviceId, members);
  }
  return desired;
}

/** What the agent needs of its datapath: the lb_maglev map, when the TC object is loaded. */
export interface MaglevDatapath {
  maglev?: BpfMap<number, number>;
}

/** Keeps lb_maglev in step with the programmed state; a no-op unless maglev is selected. */
export class MaglevSync {
  private tables: MaglevTables | undefined;
  private map: BpfMap<number, number> | undefined;

  constructor(
    private readonly config: Pick<AgentConfig, 'externalBackendSelection' | 'maglev'>,
    private readonly logger: Logger,
  ) {}

  sync(datapath: MaglevDatapath | undefined, programmed: ProgrammedState | undefined): void {
    if (this.config.externalBackendSelection !== 'maglev' || !datapath?.maglev || !programmed) {
      return;
    }
    if (this.map !== datapath.maglev || !this.tables) {
      this.map = datapath.maglev;
      this.tables = new MaglevTables(datapath.maglev, this.config.maglev.tableSize);
    }
    let stats: MaglevSyncStats;
    try {
      stats = this.tables.sync(maglevDesired(programmed));
    } catch (error) {
      // Slots may be half-written: read the tables back on the next sync.
      this.tables = undefined;
      throw error;
    }
    if (stats.recomputed > 0 || stats.removed > 0) {
      this.logger.info({ ...stats, tableSize: this.tables.tableSize }, 'maglev tables updated');
    }
  }
}
