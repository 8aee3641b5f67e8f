/**
 * Typed maps: BpfMap<K, V> encodes keys and values with their codecs and calls the bpf()
 * map commands through libbpf. Per-CPU maps are the same class with a perCpu() value codec
 * (one value per possible CPU), so every operation, batched or not, works on both.
 */
import type { Codec, FieldLayout } from './codec.js';
import { be16, be32, ipv4, isStruct, u16, u32, u8 } from './codec.js';
import { BpfError, errnoName } from './errors.js';
import { libbpf } from './libbpf.js';

/** enum bpf_map_type values sluice uses (include/uapi/linux/bpf.h). */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  SOCKMAP: 15,
  SOCKHASH: 18,
  RINGBUF: 27,
} as const;

const PER_CPU_TYPES = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);
export const isPerCpuType = (type: number): boolean => PER_CPU_TYPES.has(type);

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST */
export type UpdateFlag = 'any' | 'noexist' | 'exist';
const UPDATE_FLAGS: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2 };

const ENOENT = 2;
const EEXIST = 17;
// Errors by which the kernel says "no batch ops for this map type".
const NO_BATCH = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOTSUPP', 'errno 524']);
const BATCH_CHUNK = 4096;

let possibleCpus = 0;
/** Number of possible CPUs: the length of every per-CPU value. */
export function numPossibleCpus(): number {
  if (!possibleCpus) {
    const n = libbpf.num_possible_cpus() as number;
    if (n < 0) throw new BpfError('libbpf_num_possible_cpus', 'system', n);
    possibleCpus = n;
  }
  return possibleCpus;
}

/** The value codec of a per-CPU map: the kernel pads each CPU's slot to 8 bytes. */
export function perCpu<T>(codec: Codec<T>, cpus = numPossibleCpus()): Codec<T[]> {
  const slot = Math.ceil(codec.size / 8) * 8;
  return {
    name: codec.name,
    size: slot * cpus,
    align: 8,
    encode(values, buf, offset) {
      for (let cpu = 0; cpu < cpus; cpu++) {
        const v = values[cpu] ?? values[0];
        if (v === undefined) throw new Error(`per-CPU value for ${codec.name} needs at least one element`);
        codec.encode(v, buf, offset + cpu * slot);
      }
    },
    decode(buf, offset) {
      const out: T[] = [];
      for (let cpu = 0; cpu < cpus; cpu++) out.push(codec.decode(buf, offset + cpu * slot));
      return out;
    },
  };
}

/** Adds up per-CPU values field by field (numbers and bigints); other fields from CPU 0. */
export function sumPerCpu<T>(values: readonly T[]): T {
  const [first, ...rest] = values;
  if (first === undefined) throw new Error('sumPerCpu: no values');
  if (typeof first === 'number') return rest.reduce<number>((a, b) => a + (b as number), first) as T;
  if (typeof first === 'bigint') return rest.reduce<bigint>((a, b) => a + (b as bigint), first) as T;
  const sum: Record<string, unknown> = { ...(first as Record<string, unknown>) };
  for (const v of rest) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x === 'number') sum[k] = (sum[k] as number) + x;
      else if (typeof x === 'bigint') sum[k] = (sum[k] as bigint) + x;
    }
  }
  return sum as T;
}

export interface MapInfo {
  name: string;
  fd: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export class BpfMap<K, V> {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly maxEntries: number;
  readonly key: Codec<K>;
  readonly value: Codec<V>;
  // Scratch buffers reused by single-element calls: they run synchronously, one at a time.
  private readonly keyBuf: Buffer;
  private readonly nextKeyBuf: Buffer;
  private readonly valueBuf: Buffer;
  private batchSupported = true;

  constructor(info: MapInfo, key: Codec<K>, value: Codec<V>) {
    this.name = info.name;
    this.fd = info.fd;
    this.type = info.type;
    this.maxEntries = info.maxEntries;
    this.key = key;
    this.value = value;
    this.keyBuf = Buffer.alloc(key.size);
    this.nextKeyBuf = Buffer.alloc(key.size);
    this.valueBuf = Buffer.alloc(value.size);
  }

  private fail(call: string, ret: number): never {
    throw new BpfError(call, this.name, ret);
  }

  /** The value for key, or undefined when absent. */
  lookup(key: K): V | undefined {
    this.key.encode(key, this.keyBuf, 0);
    const ret = libbpf.map_lookup_elem(this.fd, this.keyBuf, this.valueBuf) as number;
    if (ret === -ENOENT) return undefined;
    if (ret < 0) this.fail('bpf_map_lookup_elem', ret);
    return this.value.decode(this.valueBuf, 0);
  }

  update(key: K, value: V, flag: UpdateFlag = 'any'): void {
    this.key.encode(key, this.keyBuf, 0);
    this.value.encode(value, this.valueBuf, 0);
    this.updateRaw(this.keyBuf, this.valueBuf, flag);
  }

  /** Update from already-encoded bytes: the hot path of bulk programming. */
  updateRaw(key: Buffer, value: Buffer, flag: UpdateFlag = 'any'): void {
    const ret = libbpf.map_update_elem(this.fd, key, value, UPDATE_FLAGS[flag]) as number;
    if (ret < 0) this.fail('bpf_map_update_elem', ret);
  }

  /** Deletes key; false when it was not there. */
  delete(key: K): boolean {
    this.key.encode(key, this.keyBuf, 0);
    const ret = libbpf.map_delete_elem(this.fd, this.keyBuf) as number;
    if (ret === -ENOENT) return false;
    if (ret < 0) this.fail('bpf_map_delete_elem', ret);
    return true;
  }

  *keys(): Generator<K> {
    let prev: Buffer | null = null;
    for (;;) {
      const ret = libbpf.map_get_next_key(this.fd, prev, this.nextKeyBuf) as number;
      if (ret === -ENOENT) return;
      if (ret < 0) this.fail('bpf_map_get_next_key', ret);
      prev = Buffer.from(this.nextKeyBuf);
      yield this.key.decode(prev, 0);
    }
  }

  /** Every (key, value); entries deleted while iterating are skipped. */
  *entries(): Generator<[K, V]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) yield [k, v];
    }
  }

  /**
   * Updates many entries; uses BPF_MAP_UPDATE_BATCH in chunks, or single updates where the
   * kernel has no batch op for this map type. Returns the number of entries written.
   */
  updateBatch(entries: readonly (readonly [K, V])[], flag: UpdateFlag = 'any'): number {
    const keys = Buffer.alloc(entries.length * this.key.size);
    const values = Buffer.alloc(entries.length * this.value.size);
    entries.forEach(([k, v], i) => {
      this.key.encode(k, keys, i * this.key.size);
      this.value.encode(v, values, i * this.value.size);
    });
    return this.updateBatchRaw(keys, values, entries.length, flag);
  }

  /**
   * updateBatch for bulk programming, over records[start, end) that hold their own key and value
   * (a diff's update operations: no [key, value] pair is made for each of a full pass's 200k
   * entries). The same bytes, written by encoders compiled from the codecs' field layouts
   * (fastEncoder), which skip the generic per-field loop and write dotted-quad addresses without
   * splitting them. Returns the number of entries written.
   */
  updateBatchRecords(
    records: readonly { readonly key: K; readonly value: V }[],
    start = 0,
    end = records.length,
    flag: UpdateFlag = 'any',
  ): number {
    const ks = this.key.size;
    const vs = this.value.size;
    const encodeKey = fastEncoder(this.key);
    const encodeValue = fastEncoder(this.value);
    const count = end - start;
    const keys = Buffer.alloc(count * ks);
    const values = Buffer.alloc(count * vs);
    for (let i = 0; i < count; i++) {
      const record = records[start + i] as { readonly key: K; readonly value: V };
      encodeKey(record.key, keys, i * ks);
      encodeValue(record.value, values, i * vs);
    }
    return this.updateBatchRaw(keys, values, count, flag);
  }

  /** Batch update from packed, already-encoded key and value arrays. */
  updateBatchRaw(keys: Buffer, values: Buffer, count: number, flag: UpdateFlag = 'any'): number {
    const ks = this.key.size;
    const vs = this.value.size;
    const opts = { sz: 24, elem_flags: UPDATE_FLAGS[flag], flags: 0 };
    let done = 0;
    while (done < count && this.batchSupported) {
      const n = [Math.min(BATCH_CHUNK, count - done)];
      const ret = libbpf.map_update_batch(
        this.fd,
        keys.subarray(done * ks),
        values.subarray(done * vs),
        n,
        opts,
      ) as number;
      if (ret < 0) {
        if (done === 0 && NO_BATCH.has(errnoName(ret))) {
          this.batchSupported = false;
          break;
        }
        this.fail('bpf_map_update_batch', ret);
      }
      done += n[0] ?? 0;
    }
    for (; done < count; done++) {
      this.updateRaw(keys.subarray(done * ks, (done + 1) * ks), values.subarray(done * vs, (done + 1) * vs), flag);
    }
    return done;
  }

  /** Reads the whole map: BPF_MAP_LOOKUP_BATCH where supported, else iteration. */
  lookupBatch(): [K, V][] {
    const out: [K, V][] = [];
    const ks = this.key.size;
    const vs = this.value.size;
    const batched = this.scanRaw((keys, values, count) => {
      for (let i = 0; i < count; i++) out.push([this.key.decode(keys, i * ks), this.value.decode(values, i * vs)]);
    });
    return batched ? out : [...this.entries()];
  }

  /**
   * Reads the whole map by BPF_MAP_LOOKUP_BATCH, handing each chunk to `chunk` as packed keys
   * and values (valid during the call only), decoded by nobody: for scans of a large map that
   * read one field of each entry. False (nothing read) where the map type has no batch ops.
   */
  scanRaw(chunk: (keys: Buffer, values: Buffer, count: number) => void): boolean {
    if (!this.batchSupported) return false;
    const ks = this.key.size;
    const vs = this.value.size;
    const size = Math.max(1, Math.min(BATCH_CHUNK, this.maxEntries));
    const keys = Buffer.alloc(size * ks);
    const values = Buffer.alloc(size * vs);
    // The batch cursor is opaque: a bucket index for hashes, a key for arrays.
    const tokenSize = Math.max(ks, 8);
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(tokenSize);
    for (;;) {
      const n = [size];
      const ret = libbpf.map_lookup_batch(this.fd, inBatch, outBatch, keys, values, n, {
        sz: 24,
        elem_flags: 0,
        flags: 0,
      }) as number;
      if (ret < 0 && ret !== -ENOENT) {
        if (inBatch === null && NO_BATCH.has(errnoName(ret))) {
          this.batchSupported = false;
          return false;
        }
        this.fail('bpf_map_lookup_batch', ret);
      }
      const got = n[0] ?? 0;
      if (got > 0) chunk(keys, values, got);
      if (ret === -ENOENT) return true; // the kernel says: no more
      inBatch = Buffer.from(outBatch);
    }
  }

  /**
   * Deletes the entry of an encoded key and copies its value into `value` in one call
   * (BPF_MAP_LOOKUP_AND_DELETE_ELEM); false when the key was absent.
   */
  lookupAndDeleteRaw(key: Buffer, value: Buffer): boolean {
    const ret = libbpf.map_lookup_and_delete_elem(this.fd, key, value) as number;
    if (ret === -ENOENT) return false;
    if (ret < 0) this.fail('bpf_map_lookup_and_delete_elem', ret);
    return true;
  }

  /** updateRaw with BPF_NOEXIST that reports, instead of throwing, that the key is there. */
  insertRaw(key: Buffer, value: Buffer): boolean {
    const ret = libbpf.map_update_elem(this.fd, key, value, UPDATE_FLAGS.noexist) as number;
    if (ret === -EEXIST) return false;
    if (ret < 0) this.fail('bpf_map_update_elem', ret);
    return true;
  }

  /** Deletes many keys; returns how many were deleted. Missing keys fail the batch op, so
   * they are retried one by one and skipped. */
  deleteBatch(keys: readonly K[]): number {
    const ks = this.key.size;
    const packed = Buffer.alloc(keys.length * ks);
    keys.forEach((k, i) => this.key.encode(k, packed, i * ks));
    let done = 0;
    let deleted = 0;
    while (done < keys.length && this.batchSupported) {
      const n = [Math.min(BATCH_CHUNK, keys.length - done)];
      const ret = libbpf.map_delete_batch(this.fd, packed.subarray(done * ks), n, { sz: 24, elem_flags: 0, flags: 0 }) as number;
      const got = n[0] ?? 0;
      done += got;
      deleted += got;
      if (ret === -ENOENT) {
        done++; // the key at `done` was absent: skip it and go on
        continue;
      }
      if (ret < 0) {
        if (done === 0 && NO_BATCH.has(errnoName(ret))) {
          this.batchSupported = false;
          break;
        }
        this.fail('bpf_map_delete_batch', ret);
      }
    }
    for (; done < keys.length; done++) {
      const k = keys[done];
      if (k !== undefined && this.delete(k)) deleted++;
    }
    return deleted;
  }

  /** Removes every entry (hash types; arrays cannot delete). */
  clear(): number {
    return this.deleteBatch([...this.keys()]);
  }
}


export type Encode<T> = (value: T, buf: Buffer, offset: number) => void;
const compiled = new WeakMap<object, Encode<never>>();

/**
 * Registers a hand-written bulk encoder for a codec, which fastEncoder then returns: it must write
 * exactly what codec.encode writes, and leave to codec.encode (which writes or throws) any value
 * it does not handle. For the few structs written by the 100k (src/datapath/lb-encode.ts): the
 * generic encoder reads each field by a computed name, which is slow until the JIT has warmed up,
 * and a full pass writes each struct once.
 */
export function registerEncoder<T>(codec: Codec<T>, encode: Encode<T>): void {
  compiled.set(codec, encode);
}

/**
 * An encoder writing exactly what codec.encode writes, faster for structs: the field layout
 * (the codec's, checked against BTF) is walked once here, not on every value. Integer fields
 * whose value is in range are stored byte by byte and IPv4 fields parsed digit by digit, with
 * no call per field; anything else (a value out of range, a non-canonical address, another
 * codec) goes to the field's codec, which writes it or throws its usual error. A missing field
 * goes to the struct codec, which throws its usual error. Bulk programming encodes a million
 * backends at 100k services, once each.
 */
export function fastEncoder<T>(codec: Codec<T>): Encode<T> {
  const cached = compiled.get(codec);
  if (cached) return cached as Encode<T>;
  let encode: Encode<T> = (v, b, o) => codec.encode(v, b, o);
  const kind = FIELD_KINDS.get(codec);
  if (kind !== undefined) {
    // A scalar (a u32 backend id as a key or a value): Buffer's writers check ranges slowly.
    encode = (v, b, o) => {
      if (!writeField(kind, v, b, o)) codec.encode(v, b, o);
    };
  } else if (isStruct(codec)) {
    const fields = codec.fields.filter((f) => !f.codec.name.startsWith('pad['));
    const kinds = fields.map((f) => FIELD_KINDS.get(f.codec) ?? OTHER);
    // The padding bytes' offsets, flat: index loops allocate no iterator per value.
    const padBytes: number[] = [];
    for (const p of codec.fields) {
      if (p.codec.name.startsWith('pad[')) for (let i = 0; i < p.size; i++) padBytes.push(p.offset + i);
    }
    encode = (v, b, o) => {
      const record = v as Record<string, unknown>;
      for (let i = 0; i < padBytes.length; i++) b[o + (padBytes[i] as number)] = 0;
      for (let i = 0; i < fields.length; i++) {
        const f = fields[i] as FieldLayout;
        const x = record[f.name];
        if (x === undefined) return codec.encode(v, b, o); // throws: field missing
        if (!writeField(kinds[i] as number, x, b, o + f.offset)) f.codec.encode(x, b, o + f.offset);
      }
    };
  }
  compiled.set(codec, encode);
  return encode;
}

const OTHER = 0;
const U8 = 1;
const U16 = 2;
const U32 = 3;
const BE16 = 4;
const BE32 = 5;
const IPV4 = 6;
const FIELD_KINDS = new Map<object, number>([
  [u8, U8],
  [u16, U16],
  [u32, U32],
  [be16, BE16],
  [be32, BE32],
  [ipv4, IPV4],
]);

/** Writes what the field's codec writes for an in-range integer or a canonical dotted quad;
 * false (nothing written) for anything else. */
function writeField(kind: number, x: unknown, b: Buffer, o: number): boolean {
  if (kind === IPV4) return typeof x === 'string' && writeDottedQuad(x, b, o);
  if (typeof x !== 'number') return false;
  switch (kind) {
    case U8:
      if ((x & 0xff) !== x) return false;
      b[o] = x;
      return true;
    case U16:
    case BE16: {
      if ((x & 0xffff) !== x) return false;
      const le = kind === U16;
      b[o + (le ? 0 : 1)] = x & 0xff;
      b[o + (le ? 1 : 0)] = x >>> 8;
      return true;
    }
    case U32:
    case BE32: {
      if (x >>> 0 !== x) return false;
      const le = kind === U32;
      for (let i = 0; i < 4; i++) b[o + (le ? i : 3 - i)] = (x >>> (8 * i)) & 0xff;
      return true;
    }
    default:
      return false;
  }
}

/** Writes a canonical dotted quad (four decimal octets, 0-255); false for anything else. */
export function writeDottedQuad(s: string, b: Buffer, o: number): boolean {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return false;
      b[o + part++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return false;
    } else {
      return false;
    }
  }
  if (digits === 0 || part !== 3) return false;
  b[o + 3] = octet;
  return true;
}
