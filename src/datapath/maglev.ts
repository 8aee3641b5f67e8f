/**
 * The Maglev tables of the datapath (bpf/include/maglev.h): the lb_maglev map's codec and
 * load-time config, the flow hash as the kernel computes it, and the writer that keeps one
 * inner table per service in step with its backends.
 *
 * lb_maglev is a hash of maps: service_id -> an ARRAY of M backend ids (M = maglev.tableSize),
 * 16 slots per 64-byte element, so the mmap'ed values are one flat u32 array of slots. From user
 * space an update of the outer map takes the inner map's fd, a lookup returns its id.
 *
 * MaglevTables.sync(desired) recomputes only the services whose backend names or ids changed,
 * and writes only the slots that changed (in place: each slot update is atomic, a flow hashing
 * to an unchanged slot never sees a change). A new table is created and filled completely
 * before the outer map links it (make-before-break); the backends it names are written by the
 * agent before sync is called, and a slot naming a backend that is gone falls back to a random
 * slot in the datapath rather than dropping.
 */
import { closeSync } from 'node:fs';
import { u8, u32 } from '../bpf/codec.js';
import { mapInfoByFd } from '../bpf/info.js';
import type { BpfMap } from '../bpf/map.js';
import { BpfError } from '../bpf/errors.js';
import { MapType } from '../bpf/map.js';
import {
  BPF_F_INNER_MAP,
  BPF_F_MMAPABLE,
  createMap,
  mapFdById,
  withMappedU32,
} from '../bpf/raw-map.js';
import type { KeyValueMapSpec } from '../bpf/object.js';
import type { MaglevBackend } from '../model/maglev.js';
import { MAGLEV_DEFAULT_TABLE_SIZE, maglevTable, PermutationCache } from '../model/maglev.js';

/** The map lb_tc.c (and lb_xdp.c) declare through maglev.h. Values: inner map fd in, id out. */
export const maglevMaps = {
  lb_maglev: { key: u32, value: u32 },
} as const satisfies Record<string, KeyValueMapSpec>;

/** The .rodata variables of maglev.h. */
export const maglevRodataSpec = { lb_maglev_external: u8, lb_maglev_table_size: u32 } as const;

export interface MaglevConfig {
  /** External frontends select by Maglev (externalBackendSelection: maglev). */
  enabled: boolean;
  /** M, a prime (validated by the agent's config). */
  tableSize?: number;
}

export function maglevRodata(config: MaglevConfig): Record<keyof typeof maglevRodataSpec, number> {
  return {
    lb_maglev_external: config.enabled ? 1 : 0,
    lb_maglev_table_size: config.tableSize ?? MAGLEV_DEFAULT_TABLE_SIZE,
  };
}

// ---- The flow hash: jhash_3words (bpf/include/jhash.h) as lb4_maglev_hash computes it. ----

const JHASH_INITVAL = 0xdeadbeef;
/** LB_MAGLEV_HASH_SEED in maglev.h. */
export const MAGLEV_HASH_SEED = 0x736c6d67;

const rol32 = (w: number, s: number): number => ((w << s) | (w >>> (32 - s))) >>> 0;

export function jhash3Words(a0: number, b0: number, c0: number, initval: number): number {
  const iv = (initval + JHASH_INITVAL + (3 << 2)) >>> 0;
  let a = (a0 + iv) >>> 0;
  let b = (b0 + iv) >>> 0;
  let c = (c0 + iv) >>> 0;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

function ipv4Number(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`maglev: invalid IPv4 address '${address}'`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

export interface FlowTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}

/** lb4_maglev_hash of the flow. */
export function maglevFlowHash(t: FlowTuple): number {
  return jhash3Words(
    ipv4Number(t.saddr),
    ipv4Number(t.daddr),
    (((t.sport & 0xffff) << 16) | (t.dport & 0xffff)) >>> 0,
    (MAGLEV_HASH_SEED + t.proto) >>> 0,
  );
}

/** The table slot the datapath picks for the flow. */
export function maglevSlot(t: FlowTuple, tableSize: number): number {
  return maglevFlowHash(t) % tableSize;
}

// ---- Inner tables: created from user space, written through mmap. ----
//
// Measured on the 2-CPU dev VM (docs/maglev.md): filling a 16381-slot array with
// BPF_MAP_UPDATE_BATCH took ~12 ms (one copy_from_user and update per element), and each update
// of the outer map ~10 ms (the kernel waits an RCU grace period after every update or delete of
// a map-in-map, so programs are known to see the new inner map). So inner arrays are
// BPF_F_MMAPABLE and written as memory (a 32-bit aligned store is atomic for a reader), and the
// outer map is changed in one batch per sync (one grace period).

/** The inner template of lb_maglev has these flags, so every table must (maglev.h). */
const TABLE_FLAGS = BPF_F_INNER_MAP | BPF_F_MMAPABLE;

/** LB_MAGLEV_SLOTS_PER_ELEM: a table is ceil(M / 16) elements of 16 u32 slots. */
export const MAGLEV_SLOTS_PER_ELEM = 16;
const elementsFor = (size: number): number => Math.ceil(size / MAGLEV_SLOTS_PER_ELEM);

/** Runs fn over the table's slots, mapped read-write; unmapped afterwards. */
function withSlots<T>(fd: number, size: number, what: string, fn: (slots: Uint32Array) => T): T {
  // The elements are 64 bytes (a multiple of the array's 8-byte element alignment), so the
  // values are one contiguous run of u32 slots.
  const bytes = elementsFor(size) * MAGLEV_SLOTS_PER_ELEM * 4;
  return withMappedU32(fd, bytes, size, what, fn);
}

export interface MaglevMember extends MaglevBackend {
  /** The backend's lb4_backends id on this node (ids differ between nodes; names do not). */
  id: number;
}

export interface MaglevSyncStats {
  /** Services whose table was recomputed. */
  recomputed: number;
  /** Tables created and linked (new services, or a table size change). */
  created: number;
  /** Tables unlinked (service gone, no backend, or no external frontend any more). */
  removed: number;
  /** Slots written in place in existing tables. */
  slotsWritten: number;
  /** Milliseconds computing tables, and writing them. */
  computeMs: number;
  writeMs: number;
}

interface Programmed {
  /** What the table was computed from (undefined: adopted, not known yet). */
  signature: Signature | undefined;
  slots: Uint32Array;
}

/** The Maglev tables of one node's lb_maglev map. */
export class MaglevTables {
  private readonly programmed = new Map<number, Programmed>();
  private readonly cache: PermutationCache;

  /**
   * Adopts what the map holds (a restarted agent rewrites nothing that is right): every
   * linked table of the right size is read back; one of another size (maglev.tableSize
   * changed) is replaced on the next sync.
   */
  constructor(
    private readonly outer: BpfMap<number, number>,
    readonly tableSize: number = MAGLEV_DEFAULT_TABLE_SIZE,
  ) {
    this.cache = new PermutationCache(tableSize);
    for (const [serviceId, innerId] of outer.lookupBatch()) {
      const fd = mapFdById(innerId, `lb_maglev[${serviceId}]`);
      if (fd === undefined) continue; // unlinked meanwhile
      try {
        const what = `lb_maglev[${serviceId}]`;
        const info = mapInfoByFd(fd, what);
        const fits =
          info.maxEntries === elementsFor(tableSize) &&
          info.valueSize === MAGLEV_SLOTS_PER_ELEM * 4 &&
          (info.flags & BPF_F_MMAPABLE) !== 0;
        // One of another size (maglev.tableSize changed): replaced on the next sync.
        const slots = fits
          ? withSlots(fd, tableSize, what, (mem) => Uint32Array.from(mem))
          : new Uint32Array(0);
        this.programmed.set(serviceId, { signature: undefined, slots });
      } finally {
        closeSync(fd);
      }
    }
  }

  /** Service ids that have a table. */
  serviceIds(): number[] {
    return [...this.programmed.keys()].sort((a, b) => a - b);
  }

  /** The backend ids of a service's table as programmed (undefined: none). */
  slotsOf(serviceId: number): Uint32Array | undefined {
    return this.programmed.get(serviceId)?.slots;
  }

  /**
   * Makes the map hold exactly the tables of `desired` (service_id -> its backends): services
   * whose members did not change since the last sync are skipped; a service with no member
   * gets no table (the datapath then finds no backend anyway).
   */
  sync(desired: ReadonlyMap<number, readonly MaglevMember[]>): MaglevSyncStats {
    const stats: MaglevSyncStats = {
      recomputed: 0,
      created: 0,
      removed: 0,
      slotsWritten: 0,
      computeMs: 0,
      writeMs: 0,
    };
    const time = (key: 'computeMs' | 'writeMs', fn: () => void): void => {
      const t0 = process.hrtime.bigint();
      fn();
      stats[key] += Number(process.hrtime.bigint() - t0) / 1e6;
    };
    // New tables are created and filled first, then linked in one batch (make-before-break).
    const fresh: { serviceId: number; fd: number }[] = [];
    try {
      for (const [serviceId, members] of desired) {
        if (members.length === 0) continue;
        const signature = signatureOf(members);
        const current = this.programmed.get(serviceId);
        if (sameSignature(current?.signature, signature)) continue;
        let ids: Uint32Array = new Uint32Array(0);
        time('computeMs', () => {
          ids = this.tableIds(members);
        });
        stats.recomputed++;
        time('writeMs', () => {
          const innerId =
            current?.slots.length === ids.length ? this.outer.lookup(serviceId) : undefined;
          if (innerId !== undefined) {
            stats.slotsWritten += this.writeChanged(serviceId, innerId, current?.slots, ids);
          } else {
            fresh.push({ serviceId, fd: this.create(serviceId, ids) });
            stats.created++;
          }
        });
        this.programmed.set(serviceId, { signature, slots: ids });
      }
      time('writeMs', () => {
        if (fresh.length === 0) return;
        const keys = Buffer.alloc(fresh.length * 4);
        const fds = Buffer.alloc(fresh.length * 4);
        fresh.forEach((f, i) => {
          keys.writeUInt32LE(f.serviceId, i * 4);
          fds.writeUInt32LE(f.fd, i * 4);
        });
        this.outer.updateBatchRaw(keys, fds, fresh.length);
      });
    } catch (error) {
      // What was not linked is not programmed: forget it, so the next sync starts over.
      for (const f of fresh) this.programmed.delete(f.serviceId);
      throw error;
    } finally {
      for (const f of fresh) closeSync(f.fd);
    }
    time('writeMs', () => {
      const gone = [...this.programmed.keys()].filter((id) => (desired.get(id)?.length ?? 0) === 0);
      if (gone.length === 0) return;
      this.outer.deleteBatch(gone);
      for (const id of gone) this.programmed.delete(id);
      stats.removed += gone.length;
    });
    // Permutations of names that left are dropped now and then, not on every sync: the scan
    // costs as much as many single-table changes.
    let live = 0;
    for (const members of desired.values()) live += members.length;
    if (this.cache.count > 2 * live + 1024) {
      const names = new Set<string>();
      for (const members of desired.values()) for (const m of members) names.add(m.name);
      this.cache.retain(names);
    }
    return stats;
  }

  /** The table as backend ids, one per slot. */
  private tableIds(members: readonly MaglevMember[]): Uint32Array {
    const idOf = new Map<string, number>();
    for (const m of members) if (!idOf.has(m.name)) idOf.set(m.name, m.id);
    const table = maglevTable(members, this.tableSize, this.cache);
    const byIndex = table.backends.map((name) => idOf.get(name) as number);
    const ids = new Uint32Array(table.slots.length);
    for (let s = 0; s < ids.length; s++) ids[s] = byIndex[table.slots[s] as number] as number;
    return ids;
  }

  /** Writes the slots that differ from what is programmed, in place; returns how many. */
  private writeChanged(
    serviceId: number,
    innerId: number,
    current: Uint32Array | undefined,
    next: Uint32Array,
  ): number {
    const what = `lb_maglev[${serviceId}]`;
    const fd = mapFdById(innerId, what);
    if (fd === undefined) throw new BpfError('bpf_map_get_fd_by_id', what, -2);
    try {
      return withSlots(fd, next.length, what, (mem) => {
        let written = 0;
        for (let s = 0; s < next.length; s++) {
          const id = next[s] as number;
          if (current?.[s] !== id || mem[s] !== id) {
            mem[s] = id;
            written++;
          }
        }
        return written;
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Creates a table and fills it; returns its fd (the caller links it, then closes it). */
  private create(serviceId: number, ids: Uint32Array): number {
    const what = `lb_maglev[${serviceId}]`;
    const fd = createMap({
      type: MapType.ARRAY,
      name: 'lb_maglev_in',
      keySize: 4,
      valueSize: MAGLEV_SLOTS_PER_ELEM * 4,
      maxEntries: elementsFor(ids.length),
      flags: TABLE_FLAGS,
      what,
    });
    try {
      withSlots(fd, ids.length, what, (mem) => mem.set(ids));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return fd;
  }
}

/**
 * What a table was computed from, cheap to compare on every sync: the sorted backend ids (and
 * weights when any is set). An id stands for one name for as long as it exists (the agent never
 * renumbers a backend nor reuses an id while it runs), so equal ids mean equal names.
 */
interface Signature {
  ids: Float64Array;
  weights: string;
}

function signatureOf(members: readonly MaglevMember[]): Signature {
  const ids = new Float64Array(members.length);
  let weighted = false;
  members.forEach((m, i) => {
    ids[i] = m.id;
    if (m.weight !== undefined && m.weight !== 1) weighted = true;
  });
  const weights = weighted
    ? members
        .map((m) => `${m.id}*${m.weight ?? 1}`)
        .sort()
        .join(',')
    : '';
  return { ids: ids.sort(), weights };
}

function sameSignature(a: Signature | undefined, b: Signature): boolean {
  if (a === undefined || a.ids.length !== b.ids.length || a.weights !== b.weights) return false;
  for (let i = 0; i < b.ids.length; i++) if (a.ids[i] !== b.ids[i]) return false;
  return true;
}
