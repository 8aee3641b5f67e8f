import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  formatIp,
  formatIPv4,
  formatIPv6,
  formatMac,
  parseIp,
  parseIPv4,
  parseIPv6,
  parseMac,
} from './addr.js';

void test('MAC parses with colons or dashes and formats lowercase', () => {
  assert.deepEqual([...parseMac('AA:bb:0c:DD:ee:0F')], [0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f]);
  assert.deepEqual(parseMac('02-00-00-00-00-01'), parseMac('02:00:00:00:00:01'));
  assert.equal(formatMac(Buffer.from([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f])), 'aa:bb:0c:dd:ee:0f');
  for (const bad of ['aa:bb:cc:dd:ee', 'aa:bb:cc:dd:ee:ff:00', 'gg:bb:cc:dd:ee:ff', '']) {
    assert.throws(() => parseMac(bad), /invalid MAC/);
  }
  assert.throws(() => formatMac(Buffer.alloc(5)), /6 bytes/);
});

void test('IPv4 parses dotted quads and rejects ambiguous text', () => {
  assert.deepEqual([...parseIPv4('198.18.0.1')], [198, 18, 0, 1]);
  assert.equal(formatIPv4(Buffer.from([255, 0, 10, 1])), '255.0.10.1');
  for (const bad of [
    '256.0.0.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.-4',
    '1..3.4',
    'a.b.c.d',
  ]) {
    assert.throws(() => parseIPv4(bad), /invalid IPv4/, bad);
  }
});

void test('IPv6 parses full, compressed and mixed forms', () => {
  const cases: Array<[string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
    ['::ffff:198.18.0.1', '00000000000000000000ffffc6120001'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['::1.2.3.4', '00000000000000000000000001020304'],
  ];
  for (const [text, hex] of cases) assert.equal(parseIPv6(text).toString('hex'), hex, text);
  const bad = [
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2::3',
    ':::',
    '1:2:3:4:5:6:7:8::',
    '12345::1',
    'g::1',
    ':1::2',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3',
    '1.2.3.4',
  ];
  for (const text of bad) assert.throws(() => parseIPv6(text), /invalid IPv6/, text);
});

void test('IPv6 formats per RFC 5952', () => {
  const fmt = (text: string): string => formatIPv6(parseIPv6(text));
  // Section 4.1: no leading zeros; 4.3: lowercase.
  assert.equal(fmt('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  // Section 4.2.2: a single zero group is not compressed.
  assert.equal(fmt('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  // Section 4.2.3: the longest run wins, the first of equal runs wins.
  assert.equal(fmt('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(fmt('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(fmt('::'), '::');
  assert.equal(fmt('::1'), '::1');
  assert.equal(fmt('fe80::'), 'fe80::');
  assert.equal(fmt('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
  // Section 5: IPv4-mapped addresses use the mixed notation.
  assert.equal(fmt('0:0:0:0:0:ffff:c612:1'), '::ffff:198.18.0.1');
});

void test('parseIp and formatIp dispatch on the family', () => {
  assert.equal(parseIp('10.0.0.1').length, 4);
  assert.equal(parseIp('fd00::1').length, 16);
  assert.equal(formatIp(parseIp('10.0.0.1')), '10.0.0.1');
  assert.equal(formatIp(parseIp('fd00::1')), 'fd00::1');
  assert.throws(() => formatIp(Buffer.alloc(5)), /4 or 16 bytes/);
});
