import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lb4Backend, Lb4Key, Lb4ReverseNat, LbService, LbSlotKey } from '../datapath/lb.js';
import type { Codec } from './codec.js';
import { u32 } from './codec.js';
import { fastEncoder } from './map.js';

function same<T>(codec: Codec<T>, value: T): void {
  const slow = Buffer.alloc(codec.size, 0xaa);
  const fast = Buffer.alloc(codec.size, 0xaa);
  codec.encode(value, slow, 0);
  fastEncoder(codec)(value, fast, 0);
  assert.deepEqual(fast, slow, `${codec.name} ${JSON.stringify(value)}`);
}

describe('fastEncoder', () => {
  it('writes the bytes the codec writes, addresses canonical or not', () => {
    for (const address of ['10.64.0.1', '0.0.0.0', '255.255.255.255', '010.1.1.1', '1..2.3']) {
      same(Lb4Backend, { address, port: 8080, proto: 6, flags: 3, node_address: '198.18.0.10' });
      same(Lb4Key, { address, dport: 443, proto: 17, scope: 1 });
      same(Lb4ReverseNat, { address, port: 53 });
    }
    for (const id of [0, 1, 0x01020304, 2 ** 32 - 1, 1.5]) same(u32, id);
    same(LbSlotKey, { service_id: 7, slot: 3 });
    same(LbSlotKey, { service_id: 2 ** 32 - 1, slot: 0x01020304 });
    same(LbService, {
      service_id: 1,
      rev_nat_id: 2,
      backend_count: 10,
      flags: 5,
      affinity_timeout: 10800,
    });
  });

  it('refuses what the codec refuses, with its error', () => {
    for (const id of [-1, 2 ** 32]) {
      assert.throws(() => fastEncoder(u32)(id, Buffer.alloc(4), 0), RangeError);
    }
    const bad = [
      { address: '10.0.0.256', port: 1, proto: 6, flags: 0, node_address: '0.0.0.0' },
      { address: '10.0.0', port: 1, proto: 6, flags: 0, node_address: '0.0.0.0' },
      { address: '10.0.0.1', port: 1, proto: 6, flags: 0 },
      { address: '10.0.0.1', port: 70000, proto: 6, flags: 0, node_address: '0.0.0.0' },
      { address: '10.0.0.1', port: 1, proto: -1, flags: 0, node_address: '0.0.0.0' },
    ];
    for (const value of bad) {
      const v = value as Parameters<typeof Lb4Backend.encode>[0];
      let slow: unknown;
      try {
        Lb4Backend.encode(v, Buffer.alloc(Lb4Backend.size), 0);
      } catch (error) {
        slow = error;
      }
      assert.ok(slow instanceof Error);
      assert.throws(() => fastEncoder(Lb4Backend)(v, Buffer.alloc(Lb4Backend.size), 0), {
        message: slow.message,
      });
    }
  });
});
