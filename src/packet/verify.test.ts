import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildInnerIp, buildPacket } from './build.js';
import type { PacketSpec } from './build.js';
import { checksumErrors } from './verify.js';

const V4 = { src: '198.18.0.1', dst: '198.18.0.2' };
const V6 = { src: '2001:db8::1', dst: '2001:db8::2' };

const SPECS: Record<string, PacketSpec> = {
  tcp4: {
    ipv4: { ...V4, options: Buffer.from([1, 1, 1, 0]) },
    tcp: { sport: 1, dport: 2, flags: 'S', options: [{ kind: 'mss', value: 1400 }] },
    payload: 'odd',
  },
  tcp6: { ipv6: V6, tcp: { sport: 1, dport: 2, flags: 'SA' }, payload: 'hello' },
  udp4: { ipv4: V4, udp: { sport: 53, dport: 5353 }, payload: 'x' },
  udp6: { ipv6: V6, udp: { sport: 53, dport: 5353 }, payload: 'xy' },
  icmp4: { ipv4: V4, icmp: { type: 8, id: 1, seq: 2 }, payload: 'ping' },
  icmp6: { ipv6: V6, icmpv6: { type: 128, id: 1, seq: 2 }, payload: 'ping' },
  icmp4err: {
    ipv4: V4,
    icmp: { type: 3, code: 4, rest: 1400, inner: { ipv4: V4, tcp: { sport: 1, dport: 2 } } },
  },
  icmp6err: {
    ipv6: V6,
    icmpv6: { type: 2, rest: 1280, inner: { ipv6: V6, udp: { sport: 1, dport: 2 } } },
  },
};

const MISMATCH = /^(\w+) checksum 0x([0-9a-f]{4}) != expected 0x([0-9a-f]{4})$/;

void test('freshly built packets have no checksum errors', () => {
  for (const [name, spec] of Object.entries(SPECS)) {
    assert.deepEqual(checksumErrors(buildPacket(spec)), [], name);
    assert.deepEqual(checksumErrors(buildPacket({ ...spec, eth: null }), { l2: false }), [], name);
  }
});

// Where each sample's L4 header starts, where its checksum sits within it, what the error
// calls it, and which header bytes to leave alone because changing them breaks parsing.
const L4_LAYOUT: Record<string, [offset: number, csumAt: number, layer: string, skip: number[]]> = {
  tcp4: [14 + 24, 16, 'tcp', [12]],
  tcp6: [14 + 40, 16, 'tcp', [12]],
  udp4: [14 + 20, 6, 'udp', [4, 5]],
  udp6: [14 + 40, 6, 'udp', [4, 5]],
  icmp4: [14 + 20, 2, 'icmp', []],
  icmp6: [14 + 40, 2, 'icmpv6', []],
  icmp4err: [14 + 20, 2, 'icmp', []],
  icmp6err: [14 + 40, 2, 'icmpv6', []],
};

void test('any single flipped byte in an L4 segment is reported, with the right fix', () => {
  for (const [name, spec] of Object.entries(SPECS)) {
    const layout = L4_LAYOUT[name];
    assert.ok(layout, name);
    const [l4, csumAt, layer, skip] = layout;
    const good = buildPacket(spec);
    // Errors stop before the quote: its bytes also feed the inner header check, tested below.
    const end = name.endsWith('err') ? l4 + 8 : good.length;
    for (let i = l4; i < end; i++) {
      if (skip.includes(i - l4)) continue;
      const bad = Buffer.from(good);
      bad[i] = (bad[i] ?? 0) ^ 0x10;
      const errors = checksumErrors(bad);
      assert.equal(errors.length, 1, `${name} byte ${i}: ${errors.join('; ')}`);
      const m = MISMATCH.exec(errors[0] ?? '');
      assert.ok(m, errors[0]);
      const [, reported, actual, expected] = m;
      assert.equal(reported, layer);
      assert.equal(parseInt(actual ?? '', 16), bad.readUInt16BE(l4 + csumAt));
      // Writing the reported value fixes the packet, so the expected value is the right one.
      bad.writeUInt16BE(parseInt(expected ?? '', 16), l4 + csumAt);
      assert.deepEqual(checksumErrors(bad), [], `${name} byte ${i} after fix`);
    }
  }
});

void test('IPv4 header errors are told apart from L4 errors', () => {
  const good = buildPacket(SPECS.udp4 ?? {});
  const ttl = Buffer.from(good);
  ttl[22] = 1;
  assert.equal(checksumErrors(ttl).length, 1);
  assert.match(checksumErrors(ttl)[0] ?? '', /^ipv4 header checksum 0x[0-9a-f]{4} != expected/);
  // The source address is in both the IPv4 header and the UDP pseudo-header.
  const src = Buffer.from(good);
  src[26] = 10;
  assert.deepEqual(
    checksumErrors(src).map((e) => e.split(' ')[0]),
    ['ipv4', 'udp'],
  );
  // The Ethernet header is not covered by any checksum.
  const mac = Buffer.from(good);
  mac[0] = 0xff;
  assert.deepEqual(checksumErrors(mac), []);
});

void test('an overridden header checksum is reported against the computed one', () => {
  const good = buildPacket({ ipv4: V4, udp: { sport: 1, dport: 2 } });
  const expected = good.readUInt16BE(24).toString(16).padStart(4, '0');
  const bad = buildPacket({ ipv4: { ...V4, checksum: 0xdead }, udp: { sport: 1, dport: 2 } });
  assert.deepEqual(checksumErrors(bad), [`ipv4 header checksum 0xdead != expected 0x${expected}`]);
});

void test('zero UDP checksum is fine over IPv4 and an error over IPv6', () => {
  assert.deepEqual(
    checksumErrors(buildPacket({ ipv4: V4, udp: { sport: 1, dport: 2, checksum: 0 } })),
    [],
  );
  const good6 = buildPacket({ ipv6: V6, udp: { sport: 1, dport: 2 } });
  const zero6 = buildPacket({ ipv6: V6, udp: { sport: 1, dport: 2, checksum: 0 } });
  const want = good6.readUInt16BE(60).toString(16).padStart(4, '0');
  assert.deepEqual(checksumErrors(zero6), [`udp checksum 0x0000 != expected 0x${want}`]);
});

void test('a bad quoted IPv4 header is reported as inner', () => {
  const innerSpec: PacketSpec = { ipv4: { ...V4, checksum: 0x0001 }, udp: { sport: 1, dport: 2 } };
  const pkt = buildPacket({ ipv4: V4, icmp: { type: 11, inner: buildInnerIp(innerSpec) } });
  const errors = checksumErrors(pkt);
  assert.equal(errors.length, 1);
  assert.match(errors[0] ?? '', /^inner ipv4 header checksum 0x0001 != expected 0x[0-9a-f]{4}$/);
  // Corrupting the quote after the fact breaks both the inner header and the ICMP checksum.
  const good = buildPacket(SPECS.icmp4err ?? {});
  good[14 + 20 + 8 + 8] = (good[14 + 20 + 8 + 8] ?? 0) ^ 1;
  assert.deepEqual(
    checksumErrors(good).map((e) => e.split(' checksum')[0]),
    ['icmp', 'inner ipv4 header'],
  );
});

void test('fragments skip the L4 check', () => {
  const frag = buildPacket({
    ipv4: { ...V4, flags: { mf: true } },
    udp: { sport: 1, dport: 2, checksum: 0x1234 },
    payload: Buffer.alloc(16),
  });
  assert.deepEqual(checksumErrors(frag), []);
});

void test('malformed options do not prevent checksum verification', () => {
  const pkt = buildPacket({
    ipv4: { ...V4, options: Buffer.from([7, 9, 0, 0]) },
    tcp: { sport: 1, dport: 2, options: Buffer.from([2, 9, 0, 0]) },
  });
  assert.deepEqual(checksumErrors(pkt), []);
  pkt[14 + 24 + 21] = 8;
  assert.match(checksumErrors(pkt)[0] ?? '', /^tcp checksum/);
});
