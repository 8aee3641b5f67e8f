import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { be16, bytes, encodeOne, ipv4, pad, struct, u8, u16, u32, u64 } from './codec.js';

describe('struct codec', () => {
  it('lays fields out with C natural alignment and tail padding', () => {
    const s = struct('mixed', { a: u8, b: u32, c: u16, d: u64, e: u8 });
    assert.deepEqual(
      s.fields.map((f) => [f.name, f.offset, f.size]),
      [
        ['a', 0, 1],
        ['b', 4, 4],
        ['c', 8, 2],
        ['d', 16, 8],
        ['e', 24, 1],
      ],
    );
    assert.equal(s.size, 32);
    assert.equal(s.align, 8);
  });

  it('round-trips values and writes network order for be16/ipv4', () => {
    const key = struct('flow_key_v4', { saddr: ipv4, daddr: ipv4, sport: be16, dport: be16, proto: u8, pad: pad(3) });
    const value = { saddr: '198.18.0.1', daddr: '198.18.1.2', sport: 40000, dport: 80, proto: 6 };
    const buf = encodeOne(key, value);
    assert.equal(buf.toString('hex'), 'c6120001' + 'c6120102' + '9c40' + '0050' + '06' + '000000');
    assert.deepEqual(key.decode(buf, 0), value);
  });

  it('nests structs and encodes at an offset', () => {
    const inner = struct('inner', { x: u16, y: u16 });
    const outer = struct('outer', { head: u32, inner, tail: u64 });
    assert.equal(outer.size, 16);
    const buf = Buffer.alloc(20, 0xff);
    outer.encode({ head: 1, inner: { x: 2, y: 3 }, tail: 4n }, buf, 4);
    assert.equal(buf.readUInt32LE(0), 0xffffffff, 'bytes before the offset untouched');
    assert.deepEqual(outer.decode(buf, 4), { head: 1, inner: { x: 2, y: 3 }, tail: 4n });
  });

  it('names the struct and field when a value is missing', () => {
    const s = struct('needs_b', { a: u32, b: u32 });
    assert.throws(() => encodeOne(s, { a: 1 } as never), /struct needs_b: field 'b' is missing/);
  });

  it('rejects invalid addresses and wrong byte lengths', () => {
    assert.throws(() => encodeOne(ipv4, '198.18.0.256'), /invalid IPv4 address/);
    assert.throws(() => encodeOne(bytes(6), Buffer.alloc(4)), /expected 6 bytes, got 4/);
  });
});
