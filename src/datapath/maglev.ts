/**
 * The Maglev tables of the datapath (bpf/include/maglev.h): the lb_maglev map's codec and
 * load-time config, the flow hash as the kernel computes it, and the writer that keeps one
 * inner table per service in step with its backends.
 *
 * lb_maglev is a hash of maps: service_id -> an ARRAY of M backend ids (M = maglev.tableSize).
 * From user space an update of the outer map takes the inner map's fd, a lookup returns its id.
 *
 * MaglevTables.sync(desired) recomputes only the services whose backend names or ids changed,
 * and writes only the slots that changed (in place: each slot update is atomic, a flow hashing
 * to an unchanged slot never sees a change). A new table is created and filled completely
 * before the outer map links it (make-before-break); the backends it names are written by the
 * agent before sync is called, and a slot naming a backend that is gone falls back to a random
 * slot in the datapath rather than dropping.
 */
import { closeSync } from 'node:fs';
import koffi from 'koffi';
import { u8, u32 } from '../bpf/codec.js';
import { BpfError } from '../bpf/errors.js';
import { mapInfoByFd } from '../bpf/info.js';
import { BpfMap, MapType } from '../bpf/map.js';
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

// ---- Inner tables: created from user space (libbpf's bpf_map_create). ----

const lib = koffi.load('libbpf.so.1');
const mapCreate = lib.func(
  'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
);
const mapGetFdById = lib.func('int bpf_map_get_fd_by_id(uint32_t id)');

/** BPF_F_INNER_MAP: the inner template of lb_maglev has it, so every table must. */
const BPF_F_INNER_MAP = 1 << 12;
/** struct bpf_map_create_opts (libbpf 1.1): sz, then map_flags at offset 28; 48 bytes. */
function mapCreateOpts(flags: number): Buffer {
  const opts = Buffer.alloc(48);
  opts.writeBigUInt64LE(48n, 0);
  opts.writeUInt32LE(flags, 28);
  return opts;
}

function openInner(fd: number, size: number): BpfMap<number, number> {
  return new BpfMap(
    {
      name: 'lb_maglev_inner',
      fd,
      type: MapType.ARRAY,
      keySize: 4,
      valueSize: 4,
      maxEntries: size,
    },
    u32,
    u32,
  );
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
  /** Sorted `name=id` list: what the table was computed from. */
  signature: string;
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
      const fd = mapGetFdById(innerId) as number;
      if (fd < 0) continue; // unlinked meanwhile
      try {
        const info = mapInfoByFd(fd, `lb_maglev[${serviceId}]`);
        if (info.maxEntries !== tableSize) {
          this.programmed.set(serviceId, { signature: '', slots: new Uint32Array(0) });
          continue;
        }
        const slots = new Uint32Array(tableSize);
        for (const [slot, id] of openInner(fd, tableSize).lookupBatch()) slots[slot] = id;
        this.programmed.set(serviceId, { signature: '', slots });
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
    for (const [serviceId, members] of desired) {
      if (members.length === 0) continue;
      const signature = signatureOf(members);
      const current = this.programmed.get(serviceId);
      if (current?.signature === signature) continue;
      let ids: Uint32Array = new Uint32Array(0);
      time('computeMs', () => {
        ids = this.tableIds(members);
      });
      stats.recomputed++;
      time('writeMs', () => {
        if (current && current.slots.length === ids.length) {
          stats.slotsWritten += this.writeChanged(serviceId, current.slots, ids);
        } else {
          this.create(serviceId, ids);
          stats.created++;
        }
      });
      this.programmed.set(serviceId, { signature, slots: ids });
    }
    time('writeMs', () => {
      for (const serviceId of [...this.programmed.keys()]) {
        if ((desired.get(serviceId)?.length ?? 0) > 0) continue;
        this.outer.delete(serviceId);
        this.programmed.delete(serviceId);
        stats.removed++;
      }
    });
    if (stats.recomputed > 0) {
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

  /** Writes the slots that differ, in place; returns how many. */
  private writeChanged(serviceId: number, current: Uint32Array, next: Uint32Array): number {
    const changed: number[] = [];
    for (let s = 0; s < next.length; s++) if (current[s] !== next[s]) changed.push(s);
    if (changed.length === 0) return 0;
    const innerId = this.outer.lookup(serviceId);
    if (innerId === undefined) {
      this.create(serviceId, next); // unlinked behind our back: start over
      return next.length;
    }
    const fd = mapGetFdById(innerId) as number;
    if (fd < 0) throw new BpfError('bpf_map_get_fd_by_id', `lb_maglev[${serviceId}]`, fd);
    try {
      const keys = Buffer.alloc(changed.length * 4);
      const values = Buffer.alloc(changed.length * 4);
      changed.forEach((s, i) => {
        keys.writeUInt32LE(s, i * 4);
        values.writeUInt32LE(next[s] as number, i * 4);
      });
      openInner(fd, this.tableSize).updateBatchRaw(keys, values, changed.length);
    } finally {
      closeSync(fd);
    }
    return changed.length;
  }

  /** Creates a table, fills it, then links it (replacing any table the service had). */
  private create(serviceId: number, ids: Uint32Array): void {
    const fd = mapCreate(
      MapType.ARRAY,
      'lb_maglev_in',
      4,
      4,
      ids.length,
      mapCreateOpts(BPF_F_INNER_MAP),
    ) as number;
    if (fd < 0) throw new BpfError('bpf_map_create', `lb_maglev[${serviceId}]`, fd);
    try {
      const keys = Buffer.alloc(ids.length * 4);
      for (let s = 0; s < ids.length; s++) keys.writeUInt32LE(s, s * 4);
      const values = Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);
      openInner(fd, ids.length).updateBatchRaw(keys, values, ids.length);
      this.outer.update(serviceId, fd);
    } finally {
      closeSync(fd);
    }
  }
}

function signatureOf(members: readonly MaglevMember[]): string {
  return members
    .map((m) => `${m.name}=${m.id}*${m.weight ?? 1}`)
    .sort()
    .join(',');
}
