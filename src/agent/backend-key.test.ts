import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendKey, backendName, backendNameOf, compareBackendKeys } from './backend-key.js';

describe('backendKey', () => {
  it('is a number for an IPv4 backend, named back exactly', () => {
    for (const [address, port, proto] of [
      ['10.64.0.1', 8080, 6],
      ['0.0.0.0', 0, 17],
      ['255.255.255.255', 65535, 31],
      ['198.18.16.5', 53, 17],
    ] as const) {
      const key = backendKey(address, port, proto);
      assert.equal(typeof key, 'number');
      assert.equal(backendName(key), backendNameOf(address, port, proto));
    }
  });

  it('keeps the name as the key when a number could not stand for exactly it', () => {
    for (const [address, port, proto] of [
      ['010.64.0.1', 80, 6], // not canonical: would collide with 10.64.0.1
      ['10.64.0.01', 80, 6],
      ['10.64.0', 80, 6],
      ['fd00::1', 80, 6],
      ['10.64.0.1', 70000, 6],
      ['10.64.0.1', 80, 132],
    ] as const) {
      assert.equal(backendKey(address, port, proto), backendNameOf(address, port, proto));
    }
  });

  it('gives different backends different keys', () => {
    const keys = new Set(
      ['10.0.0.1', '10.0.0.10', '010.0.0.1', '1.0.0.10'].flatMap((a) =>
        [80, 8080].flatMap((p) => [6, 17].map((proto) => backendKey(a, p, proto))),
      ),
    );
    assert.equal(keys.size, 16);
  });

  it('orders keys as their names', () => {
    const keys = [
      backendKey('10.0.0.9', 80, 6),
      backendKey('10.0.0.10', 80, 6),
      backendKey('10.0.0.1', 8080, 6),
      backendKey('10.0.0.1', 80, 17),
      backendKey('010.0.0.1', 80, 6),
    ];
    const byName = [...keys].sort((a, b) => {
      const x = backendName(a);
      const y = backendName(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    assert.deepEqual([...keys].sort(compareBackendKeys), byName);
  });
});
