/**
 * A Map keyed by backend keys (backend-key.ts), for the maps of every backend: the plan's and the
 * diff's (key -> id). Same behaviour as a Map (insertion order, a deleted key no longer visited,
 * a re-added key last), faster for number keys: they are looked up in an open-addressing table of
 * typed arrays, where a Map of 100k keys follows a bucket, an entry and a boxed number per lookup
 * (two lookups a backend in the plan measured ~0.5 us). String keys (odd backends) go to a Map.
 *
 * Entries are kept in two arrays in insertion order; a delete leaves a hole, and the holes are
 * squeezed out (and the table rebuilt) when they outnumber the entries. So do not delete while
 * iterating (nothing here does): a squeeze would move what the iterator has not visited yet.
 */
import type { BackendKey } from './backend-key.js';

const HOLE = Symbol('hole');
const EMPTY = -1;
const GONE = -2; // a deleted key's slot: probing goes on past it
const MIN_CAPACITY = 16;

export class BackendMap<V> implements Map<BackendKey, V> {
  private keyAt: (BackendKey | typeof HOLE)[] = [];
  private valueAt: (V | undefined)[] = [];
  private live = 0;
  /**
   * Number keys: slot s holds the key at 2s and its entry index (EMPTY, GONE) at 2s + 1, side by
   * side so a probe reads one cache line.
   */
  private slots = new Float64Array(2 * MIN_CAPACITY).fill(EMPTY);
  /** Slots holding an entry or GONE: the table grows before they reach half of it. */
  private used = 0;
  private readonly strings = new Map<string, number>();

  /**
   * capacity: how many keys it will hold, when known (the diff's 100k backend ids): the table is
   * made that large at once instead of growing, each growth re-inserting every key.
   */
  constructor(entries?: Iterable<readonly [BackendKey, V]>, capacity = 0) {
    if (capacity > 0) {
      // The size growing would reach: set() grows the table when it is half full.
      let size = MIN_CAPACITY;
      while (size < capacity * 2 + 2) size *= 2;
      this.slots = new Float64Array(2 * size).fill(EMPTY);
    }
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  get size(): number {
    return this.live;
  }

  get [Symbol.toStringTag](): string {
    return 'BackendMap';
  }

  get(key: BackendKey): V | undefined {
    const at = this.entryOf(key);
    return at < 0 ? undefined : this.valueAt[at];
  }

  has(key: BackendKey): boolean {
    return this.entryOf(key) >= 0;
  }

  set(key: BackendKey, value: V): this {
    if (typeof key === 'string') {
      const at = this.strings.get(key);
      if (at !== undefined) {
        this.valueAt[at] = value;
      } else {
        this.strings.set(key, this.append(key, value));
      }
      return this;
    }
    const slot = this.slotOf(key);
    const at = this.slots[slot + 1] as number;
    if (at >= 0) {
      this.valueAt[at] = value;
    } else {
      this.insert(slot, key, value);
    }
    return this;
  }

  /**
   * The value of key when it has one; otherwise sets it to value and returns undefined. One
   * probe of the table where get then set would take two (the plan adds 100k backends so).
   */
  setIfAbsent(key: BackendKey, value: V): V | undefined {
    if (typeof key === 'string') {
      const at = this.strings.get(key);
      if (at !== undefined) return this.valueAt[at];
      this.strings.set(key, this.append(key, value));
      return undefined;
    }
    const slot = this.slotOf(key);
    const at = this.slots[slot + 1] as number;
    if (at >= 0) return this.valueAt[at];
    this.insert(slot, key, value);
    return undefined;
  }

  /** Adds a number key absent from the table at its free slot (found by slotOf). */
  private insert(slot: number, key: number, value: V): void {
    if ((this.used + 1) * 4 > this.slots.length) {
      this.rebuild(this.slots.length);
      slot = this.slotOf(key);
    }
    this.slots[slot] = key;
    this.slots[slot + 1] = this.append(key, value);
    this.used++;
  }

  delete(key: BackendKey): boolean {
    let at: number;
    if (typeof key === 'string') {
      at = this.strings.get(key) ?? -1;
      if (at < 0) return false;
      this.strings.delete(key);
    } else {
      const slot = this.slotOf(key);
      at = this.slots[slot + 1] as number;
      if (at < 0) return false;
      this.slots[slot + 1] = GONE;
    }
    this.keyAt[at] = HOLE;
    this.valueAt[at] = undefined;
    this.live--;
    if (this.keyAt.length >= MIN_CAPACITY && this.live * 2 < this.keyAt.length) this.squeeze();
    return true;
  }

  clear(): void {
    this.keyAt = [];
    this.valueAt = [];
    this.live = 0;
    this.strings.clear();
    this.rebuild(MIN_CAPACITY);
  }

  forEach(
    callback: (value: V, key: BackendKey, map: Map<BackendKey, V>) => void,
    thisArg?: unknown,
  ): void {
    for (let i = 0; i < this.keyAt.length; i++) {
      const key = this.keyAt[i] as BackendKey | typeof HOLE;
      if (key !== HOLE) callback.call(thisArg, this.valueAt[i] as V, key, this);
    }
  }

  *entries(): MapIterator<[BackendKey, V]> {
    for (let i = 0; i < this.keyAt.length; i++) {
      const key = this.keyAt[i] as BackendKey | typeof HOLE;
      if (key !== HOLE) yield [key, this.valueAt[i] as V];
    }
  }

  *keys(): MapIterator<BackendKey> {
    for (let i = 0; i < this.keyAt.length; i++) {
      const key = this.keyAt[i] as BackendKey | typeof HOLE;
      if (key !== HOLE) yield key;
    }
  }

  *values(): MapIterator<V> {
    for (let i = 0; i < this.keyAt.length; i++) {
      if (this.keyAt[i] !== HOLE) yield this.valueAt[i] as V;
    }
  }

  [Symbol.iterator](): MapIterator<[BackendKey, V]> {
    return this.entries();
  }

  private append(key: BackendKey, value: V): number {
    this.keyAt.push(key);
    this.valueAt.push(value);
    this.live++;
    return this.keyAt.length - 1;
  }

  private entryOf(key: BackendKey): number {
    if (typeof key === 'string') return this.strings.get(key) ?? -1;
    return this.slots[this.slotOf(key) + 1] as number;
  }

  /** The slot of a number key (its index in slots): where it is, or the empty slot that ends
   * its probe. */
  private slotOf(key: number): number {
    const mask = this.slots.length - 2; // slots.length is a power of two: slot indexes are even
    let slot = (hash(key) << 1) & mask;
    for (;;) {
      const at = this.slots[slot + 1] as number;
      if (at === EMPTY || (at !== GONE && this.slots[slot] === key)) return slot;
      slot = (slot + 2) & mask;
    }
  }

  /** Drops the holes from the entries, then indexes them again. */
  private squeeze(): void {
    const keys: (BackendKey | typeof HOLE)[] = [];
    const values: (V | undefined)[] = [];
    for (let i = 0; i < this.keyAt.length; i++) {
      if (this.keyAt[i] === HOLE) continue;
      keys.push(this.keyAt[i] as BackendKey);
      values.push(this.valueAt[i]);
    }
    this.keyAt = keys;
    this.valueAt = values;
    this.strings.clear();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as BackendKey;
      if (typeof key === 'string') this.strings.set(key, i);
    }
    this.rebuild(this.slots.length / 2);
  }

  /**
   * A table of at least this many slots (a power of two, over twice the number keys) of the
   * entries. It grows fourfold: each growth re-inserts every key.
   */
  private rebuild(capacity: number): void {
    let size = Math.max(MIN_CAPACITY, capacity);
    while (size < this.live * 4 + 4) size *= 2;
    this.slots = new Float64Array(2 * size).fill(EMPTY);
    this.used = 0;
    for (let i = 0; i < this.keyAt.length; i++) {
      const key = this.keyAt[i] as BackendKey | typeof HOLE;
      if (typeof key !== 'number') continue;
      const slot = this.slotOf(key);
      this.slots[slot] = key;
      this.slots[slot + 1] = i;
      this.used++;
    }
  }
}

/**
 * A mix of the key's two 32-bit halves (keys are integers below 2^53) in which every bit moves
 * the low bits the table is indexed by: murmur3's finalizer. A product alone would not, and the
 * addresses of a cluster differ in the key's high bits.
 */
function hash(key: number): number {
  const low = key >>> 0;
  const high = (key - low) / 4294967296;
  let h = low ^ Math.imul(high, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
