/**
 * The programmed slots of one service id (slot -> backend id), as ProgrammedState holds them: a
 * Map, kept in an array indexed by slot. A full pass at 10k services makes 10k of these, each of
 * about 10 slots; as Maps they grew their tables three times each (~8 MB allocated), an array of
 * numbers grows once or twice and is a fifth of the size.
 *
 * Same behaviour as a Map except the order of iteration: the array's slots ascending (slots
 * 1..count, as the diff writes them), then the other keys in insertion order (what the agent
 * never writes, from odd map contents: slot 0, a slot far past the others). Nothing reads slots
 * in insertion order: every reader sorts them or looks them up by number.
 */
/** A slot further than this past the array's end goes to the Map: no huge array of holes. */
const MAX_GAP = 64;

export class SlotList implements Map<number, number> {
  /** Backend id of slot s at s - 1; undefined where there is none. */
  private ids: (number | undefined)[] = [];
  private dense = 0;
  /** Keys that are no slot of the array (see above), in a Map made when the first comes. */
  private other: Map<number, number> | undefined;

  constructor(entries?: Iterable<readonly [number, number]>) {
    if (entries) for (const [slot, id] of entries) this.set(slot, id);
  }

  get size(): number {
    return this.dense + (this.other?.size ?? 0);
  }

  get [Symbol.toStringTag](): string {
    return 'SlotList';
  }

  get(slot: number): number | undefined {
    const id = slot >= 1 ? this.ids[slot - 1] : undefined;
    return id !== undefined ? id : this.other?.get(slot);
  }

  has(slot: number): boolean {
    return this.get(slot) !== undefined;
  }

  set(slot: number, id: number): this {
    if (this.other?.has(slot) !== true && this.fits(slot)) {
      // Holes up to slot are filled with undefined: the array stays packed, never a dictionary.
      while (this.ids.length < slot - 1) this.ids.push(undefined);
      if (this.ids[slot - 1] === undefined) this.dense++;
      if (this.ids.length === slot - 1) this.ids.push(id);
      else this.ids[slot - 1] = id;
    } else {
      (this.other ??= new Map()).set(slot, id);
    }
    return this;
  }

  delete(slot: number): boolean {
    if (slot < 1 || this.ids[slot - 1] === undefined) return this.other?.delete(slot) ?? false;
    this.ids[slot - 1] = undefined;
    this.dense--;
    while (this.ids.length > 0 && this.ids[this.ids.length - 1] === undefined) this.ids.pop();
    return true;
  }

  clear(): void {
    this.ids = [];
    this.dense = 0;
    this.other = undefined;
  }

  forEach(
    callback: (id: number, slot: number, map: Map<number, number>) => void,
    thisArg?: unknown,
  ): void {
    for (let i = 0; i < this.ids.length; i++) {
      const id = this.ids[i];
      if (id !== undefined) callback.call(thisArg, id, i + 1, this);
    }
    this.other?.forEach((id, slot) => callback.call(thisArg, id, slot, this));
  }

  *entries(): MapIterator<[number, number]> {
    for (let i = 0; i < this.ids.length; i++) {
      const id = this.ids[i];
      if (id !== undefined) yield [i + 1, id];
    }
    if (this.other) yield* this.other.entries();
  }

  *keys(): MapIterator<number> {
    for (const [slot] of this.entries()) yield slot;
  }

  *values(): MapIterator<number> {
    for (const [, id] of this.entries()) yield id;
  }

  [Symbol.iterator](): MapIterator<[number, number]> {
    return this.entries();
  }

  /** Whether a slot the Map does not hold goes into the array. */
  private fits(slot: number): boolean {
    return Number.isInteger(slot) && slot >= 1 && slot <= this.ids.length + MAX_GAP;
  }
}
