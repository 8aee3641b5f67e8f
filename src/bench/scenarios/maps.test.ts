import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BenchKey, BenchValue, keyOf, packEntries, valueOf } from './maps.js';

/** fill_key() and fill_value() of native/map_bench.c, byte for byte. */
function cKey(i: number): Buffer {
  const k = Buffer.alloc(16);
  k.writeBigUInt64LE(BigInt(i), 0);
  k.writeUInt32LE((0xc6120000 + i) >>> 0, 8);
  k.writeUInt16LE(i & 0xffff, 12);
  k[14] = 6;
  return k;
}
function cValue(i: number): Buffer {
  const v = Buffer.alloc(32);
  v.writeBigUInt64LE(BigInt(i), 0);
  return v;
}

describe('maps scenario layouts', () => {
  it('has the sizes of struct bench_key and struct bench_value', () => {
    assert.equal(BenchKey.size, 16);
    assert.equal(BenchValue.size, 32);
  });

  it('encodes the same key and value bytes as the C side, past the 16-bit port wrap', () => {
    for (const i of [0, 1, 65535, 65536, 999_999]) {
      const k = Buffer.alloc(16, 0xff); // a dirty buffer: padding must be written as zero
      BenchKey.encode(keyOf(i), k, 0);
      assert.deepEqual(k, cKey(i), `key ${i}`);
      const v = Buffer.alloc(32, 0xff);
      BenchValue.encode(valueOf(i), v, 0);
      assert.deepEqual(v, cValue(i), `value ${i}`);
    }
  });

  it('packs entries back to back as the batch calls take them', () => {
    const { keys, values } = packEntries(3);
    assert.deepEqual(keys, Buffer.concat([cKey(0), cKey(1), cKey(2)]));
    assert.deepEqual(values, Buffer.concat([cValue(0), cValue(1), cValue(2)]));
  });
});
