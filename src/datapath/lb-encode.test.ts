import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Codec } from '../bpf/codec.js';
import type { Encode } from '../bpf/map.js';
import { fastEncoder } from '../bpf/map.js';
import { Lb4Backend, LbSlotKey } from './lb.js';
import { lb4BackendEncoder, lbSlotKeyEncoder, registerLbEncoders } from './lb-encode.js';

/** The encoder writes what the codec writes, or throws what it throws. */
function same<T>(codec: Codec<T>, encode: Encode<T>, value: T): void {
  const slow = Buffer.alloc(codec.size, 0xaa);
  const fast = Buffer.alloc(codec.size, 0xaa);
  let error: unknown;
  try {
    codec.encode(value, slow, 0);
  } catch (e) {
    error = e;
  }
  if (error instanceof Error) {
    assert.throws(() => encode(value, fast, 0), { message: error.message });
    return;
  }
  encode(value, fast, 0);
  assert.deepEqual(fast, slow, `${codec.name} ${JSON.stringify(value)}`);
}

describe('lb-encode', () => {
  const backend = lb4BackendEncoder(Lb4Backend);
  const slotKey = lbSlotKeyEncoder(LbSlotKey);

  it('writes a backend as Lb4Backend does, good values or bad', () => {
    const good = {
      address: '10.64.0.1',
      port: 8080,
      proto: 6,
      flags: 3,
      node_address: '198.18.0.10',
    };
    same(Lb4Backend, backend, good);
    for (const address of ['0.0.0.0', '255.255.255.255', '010.1.1.1', '1..2.3', '10.0.0.256']) {
      same(Lb4Backend, backend, { ...good, address });
      same(Lb4Backend, backend, { ...good, node_address: address });
    }
    for (const port of [0, 65535, 65536, -1, 1.5]) same(Lb4Backend, backend, { ...good, port });
    for (const proto of [0, 255, 256, -1]) same(Lb4Backend, backend, { ...good, proto });
    const missing: Partial<typeof good> = { ...good };
    delete missing.flags;
    same(Lb4Backend, backend, missing as typeof good);
  });

  it('writes a slot key as LbSlotKey does, good values or bad', () => {
    for (const [service_id, slot] of [
      [7, 3],
      [2 ** 32 - 1, 0x01020304],
      [0, 0],
      [2 ** 32, 1],
      [-1, 1],
      [1, 0.5],
    ]) {
      same(LbSlotKey, slotKey, { service_id: service_id as number, slot: slot as number });
    }
  });

  it('is what fastEncoder uses once registered', () => {
    const generic = fastEncoder(LbSlotKey);
    registerLbEncoders();
    assert.notEqual(fastEncoder(LbSlotKey), generic);
    assert.notEqual(fastEncoder(Lb4Backend), fastEncoder(LbSlotKey));
    same(LbSlotKey, fastEncoder(LbSlotKey), { service_id: 1, slot: 2 });
  });
});
