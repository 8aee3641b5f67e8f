import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseIPv4, parseIPv6 } from './addr.js';
import {
  finish,
  fold,
  incrementalUpdate16,
  internetChecksum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sum16,
} from './checksum.js';

void test('RFC 1071 section 3 worked example', () => {
  const data = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(sum16(data), 0x2ddf0);
  assert.equal(fold(sum16(data)), 0xddf2);
  assert.equal(internetChecksum(data), 0x220d);
});

void test('a well-known IPv4 header checksums to 0xb861', () => {
  // The header from the Wikipedia "Internet checksum" article, checksum field zeroed.
  const hdr = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  assert.equal(internetChecksum(hdr), 0xb861);
  hdr.writeUInt16BE(0xb861, 10);
  // A header with a correct checksum sums to 0xffff, so its checksum is 0.
  assert.equal(internetChecksum(hdr), 0);
});

void test('odd lengths are zero-padded and split regions add up', () => {
  assert.equal(internetChecksum(Buffer.from([0xab])), ~0xab00 & 0xffff);
  const whole = Buffer.from('0102030405060708090a0b', 'hex');
  assert.equal(internetChecksum(whole.subarray(0, 4), whole.subarray(4)), internetChecksum(whole));
  assert.equal(internetChecksum(Buffer.alloc(0)), 0xffff);
});

void test('large inputs keep folding correctly', () => {
  const big = Buffer.alloc(200_000, 0xff);
  assert.equal(internetChecksum(big), 0);
  assert.equal(finish(0xffff * 3), 0);
});

void test('pseudo-header sums match a hand-built pseudo-header', () => {
  const v4 = Buffer.concat([
    parseIPv4('198.18.0.1'),
    parseIPv4('198.18.0.2'),
    Buffer.from([0, 6, 0x01, 0x2c]),
  ]);
  assert.equal(fold(pseudoHeaderSumV4('198.18.0.1', '198.18.0.2', 6, 300)), fold(sum16(v4)));
  const v6 = Buffer.concat([
    parseIPv6('2001:db8::1'),
    parseIPv6('2001:db8::2'),
    Buffer.from([0, 1, 0, 4, 0, 0, 0, 58]),
  ]);
  assert.equal(fold(pseudoHeaderSumV6('2001:db8::1', '2001:db8::2', 58, 0x10004)), fold(sum16(v6)));
});

void test('incremental update (RFC 1624) matches a full recomputation', () => {
  const hdr = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  const before = internetChecksum(hdr);
  const oldWord = hdr.readUInt16BE(16);
  hdr.writeUInt16BE(0x0a00, 16);
  assert.equal(incrementalUpdate16(before, oldWord, 0x0a00), internetChecksum(hdr));
});
