import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildInnerIp, buildPacket, PacketParseError, parsePacket } from './index.js';
import type { PacketSpec, TcpOption } from './index.js';

const V4 = { src: '198.18.0.1', dst: '198.18.0.2' };
const V6 = { src: '2001:db8::1', dst: '2001:db8::2' };

function parseError(fn: () => unknown, layer: string, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PacketParseError, `expected PacketParseError, got ${String(e)}`);
    assert.equal(e.layer, layer);
    assert.equal(e.field, field);
    if (message) assert.match(e.message, message);
    return true;
  });
}

void test('TCP over IPv4 round-trips every field with header offsets', () => {
  const options: TcpOption[] = [
    { kind: 'mss', value: 1460 },
    { kind: 'sackPermitted' },
    { kind: 'timestamp', value: 0xdeadbeef, echo: 7 },
    { kind: 'nop' },
    { kind: 'wscale', shift: 14 },
  ];
  const buf = buildPacket({
    eth: { src: '0a:00:00:00:00:01', dst: '0a:00:00:00:00:02' },
    ipv4: { ...V4, ttl: 17, tos: 0x2e, id: 99, flags: { df: true } },
    tcp: {
      sport: 40000,
      dport: 443,
      seq: 0xfffffffe,
      ack: 5,
      flags: 'SAEC',
      window: 1024,
      urgent: 3,
      options,
    },
    payload: 'GET /',
  });
  const p = parsePacket(buf);
  assert.deepEqual(p.eth, {
    offset: 0,
    src: '0a:00:00:00:00:01',
    dst: '0a:00:00:00:00:02',
    type: 0x0800,
  });
  const ip = p.ipv4;
  assert.ok(ip);
  assert.equal(ip.offset, 14);
  assert.equal(ip.headerLength, 20);
  assert.equal(ip.totalLength, 20 + 40 + 5);
  assert.equal(ip.src, V4.src);
  assert.equal(ip.dst, V4.dst);
  assert.equal(ip.ttl, 17);
  assert.equal(ip.dscp, 0x0b);
  assert.equal(ip.ecn, 2);
  assert.equal(ip.id, 99);
  assert.deepEqual(ip.flags, { reserved: false, df: true, mf: false });
  assert.equal(ip.protocol, 6);
  assert.equal(ip.checksum, buf.readUInt16BE(24));
  const tcp = p.tcp;
  assert.ok(tcp);
  assert.equal(tcp.offset, 34);
  assert.equal(tcp.headerLength, 40);
  assert.equal(tcp.sport, 40000);
  assert.equal(tcp.dport, 443);
  assert.equal(tcp.seq, 0xfffffffe);
  assert.equal(tcp.ack, 5);
  assert.equal(tcp.flagString, 'SAEC');
  assert.equal(tcp.flagsByte, 0xd2);
  assert.deepEqual(tcp.flags, {
    fin: false,
    syn: true,
    rst: false,
    psh: false,
    ack: true,
    urg: false,
    ece: true,
    cwr: true,
  });
  assert.equal(tcp.window, 1024);
  assert.equal(tcp.urgent, 3);
  assert.deepEqual(tcp.options, options);
  assert.equal(tcp.optionsRaw.length, 20);
  assert.equal(p.payloadOffset, 74);
  assert.equal(p.payload.toString(), 'GET /');
  assert.equal(p.trailer.length, 0);
  assert.equal(p.truncated, false);
});

void test('UDP over IPv6 round-trips and Ethernet padding becomes the trailer', () => {
  const built = buildPacket({
    ipv6: { ...V6, hopLimit: 1, trafficClass: 0xa5, flowLabel: 0xfffff },
    udp: { sport: 5353, dport: 53 },
    payload: 'hi',
  });
  const buf = Buffer.concat([built, Buffer.alloc(6, 0xee)]);
  const p = parsePacket(buf);
  assert.deepEqual(
    { ...p.ipv6 },
    {
      offset: 14,
      version: 6,
      trafficClass: 0xa5,
      flowLabel: 0xfffff,
      payloadLength: 10,
      nextHeader: 17,
      hopLimit: 1,
      src: V6.src,
      dst: V6.dst,
      extHeaders: [],
      upperProtocol: 17,
    },
  );
  assert.deepEqual(
    { ...p.udp, checksum: 0 },
    { offset: 54, sport: 5353, dport: 53, length: 10, checksum: 0 },
  );
  assert.equal(p.payload.toString(), 'hi');
  assert.deepEqual(p.trailer, Buffer.alloc(6, 0xee));
});

void test('ICMP and ICMPv6 echo round-trip, with or without Ethernet', () => {
  const v4 = parsePacket(
    buildPacket({ eth: null, ipv4: V4, icmp: { type: 8, id: 0x1234, seq: 0x5678 }, payload: 'x' }),
    { l2: false },
  );
  assert.equal(v4.eth, undefined);
  assert.equal(v4.ipv4?.offset, 0);
  assert.deepEqual(
    { ...v4.icmp, checksum: 0 },
    { offset: 20, type: 8, code: 0, checksum: 0, rest: 0x12345678, id: 0x1234, seq: 0x5678 },
  );
  assert.equal(v4.payload.toString(), 'x');
  const v6 = parsePacket(buildPacket({ ipv6: V6, icmpv6: { type: 129, code: 0, id: 1, seq: 2 } }));
  assert.equal(v6.icmpv6?.offset, 54);
  assert.equal(v6.icmpv6?.type, 129);
  assert.equal(v6.icmpv6?.rest, 0x00010002);
  assert.equal(v6.icmpv6?.inner, undefined);
  assert.equal(v6.icmp, undefined);
});

void test('IPv4 options decode and round-trip', () => {
  // Router alert (RFC 2113), a no-op, end of list; the builder pads to 8 bytes.
  const raw = Buffer.from([0x94, 0x04, 0x00, 0x00, 0x01, 0x00]);
  const p = parsePacket(
    buildPacket({ ipv4: { ...V4, options: raw }, udp: { sport: 1, dport: 2 } }),
  );
  assert.equal(p.ipv4?.ihl, 7);
  assert.equal(p.ipv4?.headerLength, 28);
  assert.deepEqual(p.ipv4?.optionsRaw, Buffer.from([0x94, 4, 0, 0, 1, 0, 0, 0]));
  assert.deepEqual(p.ipv4?.options, [
    { type: 0x94, data: Buffer.from([0, 0]) },
    { type: 1, data: Buffer.alloc(0) },
    { type: 0, data: Buffer.alloc(0) },
  ]);
  assert.equal(p.udp?.offset, 14 + 28);
  // Decoded options fed back to the builder produce the same bytes.
  const again = buildPacket({
    ipv4: { ...V4, options: p.ipv4?.options ?? [] },
    udp: { sport: 1, dport: 2 },
  });
  assert.deepEqual(again.subarray(34, 42), p.ipv4?.optionsRaw);
});

void test('TCP options of every kind round-trip, unknown kinds as raw', () => {
  const options: TcpOption[] = [
    { kind: 'nop' },
    { kind: 'nop' },
    {
      kind: 'sack',
      blocks: [
        [1, 2],
        [0xfffffff0, 0xffffffff],
      ],
    },
    { kind: 'raw', type: 30, data: Buffer.from([0xab, 0xcd]) },
    { kind: 'raw', type: 2, data: Buffer.from([1]) },
    { kind: 'eol' },
  ];
  const p = parsePacket(buildPacket({ ipv4: V4, tcp: { sport: 1, dport: 2, options } }));
  assert.deepEqual(p.tcp?.options, options);
  assert.equal(p.tcp?.headerLength, 20 + 28);
  // Bytes after end-of-list are padding and are not decoded.
  const padded = parsePacket(
    buildPacket({
      ipv4: V4,
      tcp: { sport: 1, dport: 2, options: Buffer.from([3, 3, 2, 0, 0xff]) },
    }),
  );
  assert.deepEqual(padded.tcp?.options, [{ kind: 'wscale', shift: 2 }, { kind: 'eol' }]);
  assert.equal(padded.tcp?.optionsRaw.length, 8);
});

void test('ICMP frag-needed quoting a truncated TCP packet', () => {
  const innerSpec: PacketSpec = {
    ipv4: { src: '10.0.0.1', dst: '10.96.0.10', flags: { df: true } },
    tcp: { sport: 33000, dport: 8080, seq: 0x01020304, flags: 'PA' },
    payload: Buffer.alloc(1400),
  };
  const buf = buildPacket({
    ipv4: { src: '192.0.2.1', dst: '10.0.0.1' },
    icmp: { type: 3, code: 4, rest: 1300, inner: innerSpec },
  });
  const p = parsePacket(buf);
  const icmp = p.icmp;
  assert.ok(icmp);
  assert.equal(icmp.mtu, 1300);
  const inner = icmp.inner;
  assert.ok(inner);
  assert.equal(inner.eth, undefined);
  assert.equal(inner.truncated, true);
  assert.equal(inner.ipv4?.offset, 14 + 20 + 8);
  assert.equal(inner.ipv4?.src, '10.0.0.1');
  assert.equal(inner.ipv4?.dst, '10.96.0.10');
  assert.equal(inner.ipv4?.totalLength, 20 + 20 + 1400);
  assert.equal(inner.tcp, undefined);
  assert.deepEqual(inner.partialL4, {
    protocol: 6,
    offset: 62,
    bytes: buf.subarray(62, 70),
    sport: 33000,
    dport: 8080,
    seq: 0x01020304,
  });
  // Offsets index the outer buffer, so raw bytes can be checked directly.
  assert.equal(buf.readUInt16BE(inner.partialL4?.offset ?? -1), 33000);
  // The outer packet's payload is the raw quote.
  assert.deepEqual(p.payload, buildInnerIp(innerSpec));
});

void test('ICMP errors of every quoting type parse the inner packet; others do not', () => {
  const inner = { ipv4: V4, udp: { sport: 1000, dport: 53 }, payload: 'query' };
  for (const type of [3, 4, 5, 11, 12]) {
    const p = parsePacket(buildPacket({ ipv4: V4, icmp: { type, inner } }));
    assert.equal(p.icmp?.inner?.udp?.sport, 1000, `type ${type}`);
    assert.equal(p.icmp?.inner?.udp?.length, 13);
    assert.equal(p.icmp?.inner?.payload.length, 0);
  }
  const echo = parsePacket(
    buildPacket({ ipv4: V4, icmp: { type: 8 }, payload: buildInnerIp(inner) }),
  );
  assert.equal(echo.icmp?.inner, undefined);
});

void test('ICMPv6 packet-too-big and unreachable quote complete inner packets', () => {
  const innerSpec: PacketSpec = {
    ipv6: { src: V6.dst, dst: V6.src },
    tcp: {
      sport: 443,
      dport: 40000,
      flags: 'A',
      options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamp', value: 1, echo: 2 }],
    },
    payload: 'data',
  };
  for (const type of [1, 2, 3, 4]) {
    const buf = buildPacket({
      ipv6: V6,
      icmpv6: { type, rest: 1280, inner: buildInnerIp(innerSpec, { l4Bytes: Infinity }) },
    });
    const p = parsePacket(buf);
    const icmp = p.icmpv6;
    assert.ok(icmp);
    assert.equal(icmp.mtu, type === 2 ? 1280 : undefined);
    const inner = icmp.inner;
    assert.ok(inner, `type ${type}`);
    assert.equal(inner.truncated, false);
    assert.equal(inner.ipv6?.offset, 14 + 40 + 8);
    assert.equal(inner.tcp?.offset, 14 + 40 + 8 + 40);
    assert.equal(inner.tcp?.flagString, 'A');
    assert.deepEqual(inner.tcp?.options, [
      { kind: 'nop' },
      { kind: 'nop' },
      { kind: 'timestamp', value: 1, echo: 2 },
    ]);
    assert.equal(inner.payload.toString(), 'data');
  }
});

void test('non-first fragments carry no L4 header', () => {
  const v4 = parsePacket(
    buildPacket({ ipv4: { ...V4, fragOffset: 185, protocol: 6 }, payload: Buffer.alloc(16, 7) }),
  );
  assert.equal(v4.tcp, undefined);
  assert.equal(v4.ipv4?.fragOffset, 185);
  assert.equal(v4.payloadOffset, 34);
  assert.equal(v4.payload.length, 16);
  // IPv6 fragment header: next header UDP, offset 100 units, more fragments, id 0xcafe.
  const frag = Buffer.from([17, 0, 0x03, 0x21, 0, 0, 0xca, 0xfe]);
  const v6 = parsePacket(
    buildPacket({
      ipv6: { ...V6, nextHeader: 44 },
      payload: Buffer.concat([frag, Buffer.alloc(8)]),
    }),
  );
  assert.deepEqual(v6.ipv6?.fragment, { offset: 100, more: true, id: 0xcafe });
  assert.deepEqual(v6.ipv6?.extHeaders, [{ type: 44, offset: 54, length: 8 }]);
  assert.equal(v6.ipv6?.upperProtocol, 17);
  assert.equal(v6.udp, undefined);
  assert.equal(v6.payloadOffset, 62);
});

void test('IPv6 extension headers are stepped over to reach L4', () => {
  // Hop-by-hop with a PadN filling its 8 bytes, then a destination-options header of 16 bytes.
  const hbh = Buffer.from([60, 0, 1, 4, 0, 0, 0, 0]);
  const dst = Buffer.concat([Buffer.from([59, 1, 1, 12]), Buffer.alloc(12)]);
  const p = parsePacket(
    buildPacket({
      ipv6: { ...V6, nextHeader: 0 },
      payload: Buffer.concat([hbh, dst, Buffer.from('tail')]),
    }),
  );
  assert.deepEqual(p.ipv6?.extHeaders, [
    { type: 0, offset: 54, length: 8 },
    { type: 60, offset: 62, length: 16 },
  ]);
  assert.equal(p.ipv6?.upperProtocol, 59);
  assert.equal(p.payloadOffset, 78);
  assert.equal(p.payload.toString(), 'tail');
});

void test('unknown ethertypes and IP protocols leave the rest as payload', () => {
  const arp = parsePacket(buildPacket({ eth: { type: 0x0806 }, payload: 'arp!' }));
  assert.equal(arp.eth?.type, 0x0806);
  assert.equal(arp.ipv4, undefined);
  assert.equal(arp.payloadOffset, 14);
  assert.equal(arp.payload.toString(), 'arp!');
  const gre = parsePacket(buildPacket({ ipv4: { ...V4, protocol: 47 }, payload: 'gre' }));
  assert.equal(gre.payloadOffset, 34);
  assert.equal(gre.payload.toString(), 'gre');
});

void test('malformed input throws naming the layer and field', () => {
  const tcp = buildPacket({ ipv4: V4, tcp: { sport: 1, dport: 2 }, payload: 'abcd' });
  parseError(
    () => parsePacket(tcp.subarray(0, 10)),
    'eth',
    'header',
    /need 14 bytes at offset 0, only 10/,
  );
  parseError(
    () => parsePacket(tcp.subarray(0, 30)),
    'ipv4',
    'header',
    /need 20 bytes at offset 14/,
  );
  parseError(() => parsePacket(tcp.subarray(0, tcp.length - 1)), 'ipv4', 'totalLength');
  const badIhl = Buffer.from(tcp);
  badIhl[14] = 0x44;
  parseError(() => parsePacket(badIhl), 'ipv4', 'ihl', /4 is below the minimum 5/);
  const badVersion = Buffer.from(tcp);
  badVersion[14] = 0x65;
  parseError(() => parsePacket(badVersion), 'ipv4', 'version');
  parseError(() => parsePacket(Buffer.from([0x25]), { l2: false }), 'ip', 'version');
  const shortTotal = buildPacket({ ipv4: { ...V4, totalLength: 12 }, udp: { sport: 1, dport: 2 } });
  parseError(
    () => parsePacket(shortTotal),
    'ipv4',
    'totalLength',
    /shorter than the 20-byte header/,
  );
  parseError(
    () => parsePacket(buildPacket({ ipv4: V4, tcp: { sport: 1, dport: 2, dataOffset: 4 } })),
    'tcp',
    'dataOffset',
  );
  parseError(
    () => parsePacket(buildPacket({ ipv4: V4, tcp: { sport: 1, dport: 2, dataOffset: 15 } })),
    'tcp',
    'options',
  );
  parseError(
    () => parsePacket(buildPacket({ ipv4: { ...V4, protocol: 6 }, payload: Buffer.alloc(12) })),
    'tcp',
    'header',
  );
  parseError(
    () => parsePacket(buildPacket({ ipv4: V4, udp: { sport: 1, dport: 2, length: 7 } })),
    'udp',
    'length',
  );
  parseError(
    () => parsePacket(buildPacket({ ipv4: V4, udp: { sport: 1, dport: 2, length: 9 } })),
    'udp',
    'length',
    /runs past the end/,
  );
  parseError(
    () =>
      parsePacket(
        buildPacket({ ipv4: V4, tcp: { sport: 1, dport: 2, options: Buffer.from([2, 9, 0, 0]) } }),
      ),
    'tcp',
    'options',
    /option 2 at byte 0 has length 9/,
  );
  parseError(
    () =>
      parsePacket(
        buildPacket({ ipv4: { ...V4, options: Buffer.from([7, 1, 0, 0]), protocol: 253 } }),
      ),
    'ipv4',
    'options',
  );
  parseError(
    () => parsePacket(buildPacket({ ipv6: V6, udp: { sport: 1, dport: 2 } }).subarray(0, 50)),
    'ipv6',
    'header',
  );
  parseError(
    () =>
      parsePacket(buildPacket({ ipv6: { ...V6, nextHeader: 0 }, payload: Buffer.from([59, 1]) })),
    'ipv6',
    'extHeader[0]',
  );
  const badInner = buildPacket({ ipv4: V4, icmp: { type: 11, inner: Buffer.from([0x45, 0, 0]) } });
  parseError(() => parsePacket(badInner), 'icmp.inner.ipv4', 'header');
  const badInnerVersion = buildPacket({ ipv4: V4, icmp: { type: 3, inner: Buffer.alloc(28) } });
  parseError(() => parsePacket(badInnerVersion), 'icmp.inner.ip', 'version');
});

void test('allowTruncated parses a quote on its own', () => {
  const quote = buildInnerIp({ ipv4: V4, tcp: { sport: 5, dport: 6 }, payload: 'zzzz' });
  parseError(() => parsePacket(quote, { l2: false }), 'ipv4', 'totalLength');
  const p = parsePacket(quote, { l2: false, allowTruncated: true });
  assert.equal(p.truncated, true);
  assert.equal(p.partialL4?.sport, 5);
  assert.equal(p.partialL4?.dport, 6);
  assert.equal(p.partialL4?.seq, 0);
});
