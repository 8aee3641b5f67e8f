import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackendKey } from './backend-key.js';
import { backendKey } from './backend-key.js';
import { BackendMap } from './backend-map.js';
import { seededRandom } from '../testing/random.js';

function same(map: BackendMap<number>, reference: Map<BackendKey, number>): void {
  assert.equal(map.size, reference.size);
  assert.deepEqual([...map], [...reference]);
  assert.deepEqual([...map.keys()], [...reference.keys()]);
  assert.deepEqual([...map.values()], [...reference.values()]);
  const seen: [BackendKey, number][] = [];
  map.forEach((v, k) => seen.push([k, v]));
  assert.deepEqual(seen, [...reference]);
}

describe('BackendMap', () => {
  it('behaves as a Map through a long series of sets, deletes and re-adds', () => {
    for (const seed of [1, 2, 3]) {
      const next = seededRandom(seed);
      const keys: BackendKey[] = [];
      for (let i = 0; i < 300; i++) {
        const address = `10.${i % 3}.${Math.floor(i / 7)}.${i % 250}`;
        keys.push(backendKey(address, 80 + (i % 5), i % 2 ? 6 : 17));
      }
      keys.push(backendKey('010.0.0.1', 80, 6), backendKey('fd00::1', 443, 6), 0, 2 ** 53 - 1);
      const map = new BackendMap<number>();
      const reference = new Map<BackendKey, number>();
      for (let step = 0; step < 20000; step++) {
        const key = keys[Math.floor(next() * keys.length)] as BackendKey;
        const r = next();
        if (r < 0.45) {
          map.set(key, step);
          reference.set(key, step);
        } else if (r < 0.55) {
          // setIfAbsent: the value there, else set (Map's has/get/set by hand).
          const had = reference.get(key);
          if (!reference.has(key)) reference.set(key, step);
          assert.equal(map.setIfAbsent(key, step), had);
        } else if (r < 0.95) {
          assert.equal(map.delete(key), reference.delete(key));
        } else {
          assert.equal(map.get(key), reference.get(key));
          assert.equal(map.has(key), reference.has(key));
        }
        if (step % 997 === 0) same(map, reference);
      }
      same(map, reference);
      map.clear();
      reference.clear();
      same(map, reference);
    }
  });

  it('holds 100k backends and finds each, sized up front or grown', () => {
    for (const map of [new BackendMap<number>(), new BackendMap<number>(undefined, 100000)]) {
      holds100k(map);
    }
  });
});

/** 100k backends set, then every 997th found and one never set missed. */
function holds100k(map: BackendMap<number>): void {
  for (let i = 0; i < 100000; i++)
    map.set(backendKey(`10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, 8080, 6), i);
  assert.equal(map.size, 100000);
  for (let i = 0; i < 100000; i += 997) {
    assert.equal(
      map.get(backendKey(`10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, 8080, 6)),
      i,
    );
  }
  assert.equal(map.get(backendKey('10.64.0.0', 8081, 6)), undefined);
}
