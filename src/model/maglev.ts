/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4), pure.
 *
 * A service's lookup table has M slots (M prime); each slot names one backend. A packet's
 * 5-tuple hash modulo M picks the slot (bpf/include/maglev.h), so every node that computes the
 * same table for the same backends sends a flow to the same backend, whichever node the
 * network hands it to. The table depends only on the backends' *names* and weights, never on
 * their input order, node-local ids or on which node computes it.
 *
 * Backend names: `<address>:<port>/<PROTO>` (the agent's BackendKey, e.g. `198.18.16.5:8080/TCP`).
 * A table belongs to one service, so names need only be unique within it, and an endpoint's
 * address and port are what every node sees identically (a pod name would be too, but a
 * replaced pod that keeps its address would then move its flows for nothing).
 *
 * Permutation: each name is hashed once with SHA-256 (node:crypto's one-shot `hash`, ~1 µs a
 * name, measured: faster than MD5/SHA-1 through createHash, and no hand-rolled hash to get
 * wrong); the first two big-endian 32-bit words give offset = w0 mod M and skip = w1 mod (M-1) + 1,
 * the paper's two independent hashes. As M is prime, (offset + j*skip) mod M visits every slot.
 *
 * Fill: rounds; in each round every backend (in name order) takes the next free slot of its
 * permutation, until all M are taken. Unweighted, every backend ends with floor(M/N) or
 * ceil(M/N) slots. Weighted (optional, integer >= 0): a backend takes weight/maxWeight turns
 * per round on average (credit carried between rounds), so its share follows its weight;
 * weight 0 removes it.
 */
import { hash } from 'node:crypto';

/** The default table size: a prime well above 100 x the backends of a typical service. */
export const MAGLEV_DEFAULT_TABLE_SIZE = 16381;
/** Bounds of the table size: at least 251 slots; at most 131071 (512 KiB per service). */
export const MAGLEV_MIN_TABLE_SIZE = 251;
export const MAGLEV_MAX_TABLE_SIZE = 131071;

export interface MaglevBackend {
  /** Stable across nodes: `<address>:<port>/<PROTO>`. */
  name: string;
  /** Relative weight, integer >= 0; default 1. */
  weight?: number;
}

export interface MaglevPermutation {
  offset: number;
  skip: number;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Why `size` cannot be a table size, or undefined when it can. */
export function tableSizeProblem(size: number): string | undefined {
  if (!Number.isInteger(size)) return `expected an integer, got ${size}`;
  if (size < MAGLEV_MIN_TABLE_SIZE || size > MAGLEV_MAX_TABLE_SIZE) {
    return `${size} is outside ${MAGLEV_MIN_TABLE_SIZE}..${MAGLEV_MAX_TABLE_SIZE}`;
  }
  if (!isPrime(size)) {
    return `${size} is not prime (Maglev permutations must cover every slot), e.g. ${nearestPrimes(size).join(' or ')}`;
  }
  return undefined;
}

function nearestPrimes(n: number): number[] {
  let below = Math.floor(n) - 1;
  while (below > 2 && !isPrime(below)) below--;
  let above = Math.ceil(n) + 1;
  while (!isPrime(above)) above++;
  return [below, above];
}

/** offset and skip of a backend name in a table of `size` slots. */
export function permutationOf(name: string, size: number): MaglevPermutation {
  const digest = hash('sha256', name, 'buffer');
  return {
    offset: digest.readUInt32BE(0) % size,
    skip: (digest.readUInt32BE(4) % (size - 1)) + 1,
  };
}

/**
 * Permutations are a function of (name, size) only: callers recomputing many tables may share
 * one cache, so a backend that stays is hashed once.
 */
export class PermutationCache {
  private readonly entries = new Map<string, MaglevPermutation>();
  constructor(readonly size: number) {}

  get(name: string): MaglevPermutation {
    let p = this.entries.get(name);
    if (!p) {
      p = permutationOf(name, this.size);
      this.entries.set(name, p);
    }
    return p;
  }

  /** Forgets names not in `keep` (call after a full recompute to bound memory). */
  retain(keep: ReadonlySet<string>): void {
    for (const name of this.entries.keys()) if (!keep.has(name)) this.entries.delete(name);
  }

  get count(): number {
    return this.entries.size;
  }
}

export interface MaglevTable {
  /** The backends that own slots, sorted by name: `slots` holds indices into it. */
  backends: string[];
  /** M entries, each an index into `backends`. Empty when there is no backend. */
  slots: Uint32Array;
}

/**
 * The Maglev table of `size` slots (a prime, see tableSizeProblem) for the backends. Duplicate
 * names count once (the first weight given wins). Throws on a bad size or weight.
 */
export function maglevTable(
  backends: readonly (MaglevBackend | string)[],
  size: number = MAGLEV_DEFAULT_TABLE_SIZE,
  cache?: PermutationCache,
): MaglevTable {
  const problem = tableSizeProblem(size);
  if (problem !== undefined) throw new RangeError(`maglev table size: ${problem}`);
  if (cache && cache.size !== size) {
    throw new RangeError(`maglev: permutation cache is for size ${cache.size}, not ${size}`);
  }
  const byName = new Map<string, number>();
  for (const b of backends) {
    const { name, weight = 1 } = typeof b === 'string' ? { name: b } : b;
    if (!Number.isInteger(weight) || weight < 0) {
      throw new RangeError(`maglev: backend ${name}: weight ${weight} is not an integer >= 0`);
    }
    if (!byName.has(name)) byName.set(name, weight);
  }
  const names = [...byName.entries()]
    .filter(([, w]) => w > 0)
    .map(([n]) => n)
    .sort(compare);
  const n = names.length;
  if (n === 0) return { backends: [], slots: new Uint32Array(0) };

  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const weight = new Float64Array(n);
  let maxWeight = 0;
  names.forEach((name, i) => {
    const p = cache ? cache.get(name) : permutationOf(name, size);
    offset[i] = p.offset;
    skip[i] = p.skip;
    weight[i] = byName.get(name) as number;
    maxWeight = Math.max(maxWeight, weight[i]);
  });
  const uniform = weight.every((w) => w === maxWeight);

  const slots = uniform
    ? fillUniform(size, offset, skip)
    : fillWeighted(size, offset, skip, weight);
  return { backends: names, slots };
}

// Both fills keep, per backend, the slot its permutation is at (offset + j*skip mod M, advanced
// by adding skip: no multiplication). entry[slot] = backend index, -1 while free. The uniform
// fill is the hot path (every agent start computes every table), so it is one tight loop.

function fillUniform(size: number, offset: Uint32Array, skip: Uint32Array): Uint32Array {
  const n = offset.length;
  const entry = new Int32Array(size).fill(-1);
  const cursor = Uint32Array.from(offset);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = cursor[i] as number;
      const s = skip[i] as number;
      while ((entry[c] as number) >= 0) {
        c += s;
        if (c >= size) c -= size;
      }
      entry[c] = i;
      c += s;
      cursor[i] = c >= size ? c - size : c;
      if (++filled === size) return new Uint32Array(entry.buffer);
    }
  }
}

/** A backend takes weight/maxWeight turns per round on average (credit carried over). */
function fillWeighted(
  size: number,
  offset: Uint32Array,
  skip: Uint32Array,
  weight: Float64Array,
): Uint32Array {
  const n = offset.length;
  const maxWeight = Math.max(...weight);
  const entry = new Int32Array(size).fill(-1);
  const cursor = Uint32Array.from(offset);
  const credit = new Float64Array(n);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i] = (credit[i] as number) + (weight[i] as number) / maxWeight;
      while ((credit[i] as number) >= 1 && filled < size) {
        credit[i] = (credit[i] as number) - 1;
        let c = cursor[i] as number;
        const s = skip[i] as number;
        while ((entry[c] as number) >= 0) {
          c += s;
          if (c >= size) c -= size;
        }
        entry[c] = i;
        c += s;
        cursor[i] = c >= size ? c - size : c;
        filled++;
      }
    }
  }
  return new Uint32Array(entry.buffer);
}

/** Slots owned by each backend name. */
export function slotCounts(table: MaglevTable): Map<string, number> {
  const counts = new Map<string, number>(table.backends.map((b) => [b, 0]));
  for (const i of table.slots) {
    const name = table.backends[i] as string;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

/** The backend name of a slot, or undefined for an empty table. */
export function backendAt(table: MaglevTable, slot: number): string | undefined {
  const i = table.slots[slot];
  return i === undefined ? undefined : table.backends[i];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
