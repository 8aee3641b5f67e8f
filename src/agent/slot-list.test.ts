import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlotList } from './slot-list.js';
import { seededRandom } from '../testing/random.js';

const bySlot = (entries: Iterable<[number, number]>): [number, number][] =>
  [...entries].sort((a, b) => a[0] - b[0]);

/** The same entries as the Map (in slot order: see slot-list.ts), through every reader. */
function same(list: SlotList, reference: Map<number, number>): void {
  assert.equal(list.size, reference.size);
  const want = bySlot(reference);
  assert.deepEqual(bySlot(list), want);
  assert.deepEqual(bySlot(list.entries()), want);
  assert.deepEqual(
    [...list.keys()].sort((a, b) => a - b),
    want.map(([k]) => k),
  );
  assert.deepEqual([...list.values()].sort(), [...reference.values()].sort());
  const seen: [number, number][] = [];
  list.forEach((id, slot) => seen.push([slot, id]));
  assert.deepEqual(bySlot(seen), want);
}

describe('SlotList', () => {
  it('behaves as a Map of slots through sets, deletes and lookups, odd keys too', () => {
    // Mostly slots 1..40 (a group), and what odd map contents may hold: 0, far-off slots.
    const keys = [...Array.from({ length: 40 }, (_, i) => i + 1), 0, 200, 4294967295, 70, 41];
    for (const seed of [1, 2, 3]) {
      const next = seededRandom(seed);
      const list = new SlotList();
      const reference = new Map<number, number>();
      for (let step = 0; step < 20000; step++) {
        const slot = keys[Math.floor(next() * keys.length)] as number;
        const r = next();
        if (r < 0.5) {
          list.set(slot, step);
          reference.set(slot, step);
        } else if (r < 0.8) {
          assert.equal(list.delete(slot), reference.delete(slot));
        } else {
          assert.equal(list.get(slot), reference.get(slot));
          assert.equal(list.has(slot), reference.has(slot));
        }
        if (step % 499 === 0) same(list, reference);
      }
      same(list, reference);
      same(new SlotList(list), reference);
      list.clear();
      reference.clear();
      same(list, reference);
    }
  });

  it('iterates slots written in order in slot order', () => {
    const list = new SlotList();
    for (let slot = 1; slot <= 10; slot++) list.set(slot, 100 + slot);
    assert.deepEqual(
      [...list],
      Array.from({ length: 10 }, (_, i) => [i + 1, 101 + i]),
    );
  });
});
