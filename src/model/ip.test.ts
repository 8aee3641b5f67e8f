import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { replicaSuffix, safeEncode, shortHash, stableJson } from './hash.js';
import {
  cidrContains,
  cidrWithin,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  nthSubnet,
  parseCidr,
  parseIPv4,
} from './ip.js';

describe('IPv4 helpers', () => {
  it('parses and formats canonical dotted quads only', () => {
    assert.equal(parseIPv4('198.18.0.1'), 0xc6120001);
    assert.equal(formatIPv4(0xc6120001), '198.18.0.1');
    assert.equal(formatIPv4(0xffffffff), '255.255.255.255');
    for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4 ', '::1']) {
      assert.equal(parseIPv4(bad), undefined, bad);
    }
  });

  it('CIDRs: host bits must be clear; containment, overlap and subnets', () => {
    assert.equal(parseCidr('198.18.16.1/20'), undefined);
    assert.equal(parseCidr('198.18.16.0/33'), undefined);
    const base = parseCidr('198.18.16.0/20');
    assert.ok(base);
    assert.equal(formatCidr(nthSubnet(base, 24, 1) ?? base), '198.18.17.0/24');
    assert.equal(nthSubnet(base, 24, 16), undefined);
    assert.equal(cidrContains(base, parseIPv4('198.18.31.255') ?? 0), true);
    assert.equal(cidrContains(base, parseIPv4('198.18.32.0') ?? 0), false);
    const a = parseCidr('198.18.16.0/24');
    const b = parseCidr('198.18.16.128/25');
    assert.ok(a && b);
    assert.equal(cidrWithin(b, a), true);
    assert.equal(cidrWithin(a, b), false);
    assert.equal(cidrsOverlap(a, b), true);
    assert.equal(cidrsOverlap(a, parseCidr('198.18.17.0/24') ?? a), false);
  });
});

describe('deterministic names', () => {
  it('replica suffixes never collide and look random', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20000; i++) seen.add(replicaSuffix('abcde', i));
    assert.equal(seen.size, 20000);
    assert.notEqual(replicaSuffix('abcde', 0), replicaSuffix('fghjk', 0));
    for (const s of seen) assert.match(s, /^[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it('hashes do not depend on key order', () => {
    assert.equal(stableJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    assert.equal(shortHash({ x: 1, y: 2 }), shortHash({ y: 2, x: 1 }));
    assert.notEqual(shortHash({ x: 1 }), shortHash({ x: 2 }));
    assert.equal(safeEncode(0), 'bbbbb');
  });
});
