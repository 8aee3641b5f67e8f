import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildInnerIp, buildPacket } from './build.js';
import type { TcpSpec } from './build.js';

// Expected frames below were produced by an independent script (struct packing plus a
// textbook one's-complement sum), not by this library.
const TCP_SYN_V4 =
  '020000000002020000000001080045' +
  '00003c1234400040069c60c6120001c6120002' +
  '9c4000500000000100000000a002ffff1ee30000' +
  '020405b40402080a000000640000000001030307';
const UDP_V6 =
  '02000000000202000000000186dd' +
  '60012345000d114020010db800000000000000000000000120010db8000000000000000000000002' +
  '14e90035000d4b6f' +
  '68656c6c6f';
const ICMP_ECHO_V4 = '4500002000000000400166db0a0000010a000002' + '080018ec00420001' + '70696e67';
const ICMPV6_ECHO =
  '60000000000b3afffe800000000000000000000000000001ff020000000000000000000000000001' +
  '8000bdc100070009' +
  '616263';

void test('TCP SYN with options over IPv4 matches the reference frame', () => {
  const pkt = buildPacket({
    ipv4: { src: '198.18.0.1', dst: '198.18.0.2', id: 0x1234, flags: { df: true } },
    tcp: {
      sport: 40000,
      dport: 80,
      seq: 1,
      flags: 'S',
      options: [
        { kind: 'mss', value: 1460 },
        { kind: 'sackPermitted' },
        { kind: 'timestamp', value: 100, echo: 0 },
        { kind: 'nop' },
        { kind: 'wscale', shift: 7 },
      ],
    },
  });
  assert.equal(pkt.toString('hex'), TCP_SYN_V4);
});

void test('UDP over IPv6 matches the reference frame', () => {
  const pkt = buildPacket({
    ipv6: { src: '2001:db8::1', dst: '2001:db8::2', flowLabel: 0x12345 },
    udp: { sport: 5353, dport: 53 },
    payload: 'hello',
  });
  assert.equal(pkt.toString('hex'), UDP_V6);
});

void test('ICMP echo without Ethernet matches the reference packet', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '10.0.0.1', dst: '10.0.0.2' },
    icmp: { type: 8, id: 0x42, seq: 1 },
    payload: Buffer.from('ping'),
  });
  assert.equal(pkt.toString('hex'), ICMP_ECHO_V4);
});

void test('ICMPv6 echo with an odd-length payload matches the reference packet', () => {
  const pkt = buildPacket({
    eth: null,
    ipv6: { src: 'fe80::1', dst: 'ff02::1', hopLimit: 255 },
    icmpv6: { type: 128, id: 7, seq: 9 },
    payload: 'abc',
  });
  assert.equal(pkt.toString('hex'), ICMPV6_ECHO);
});

void test('the Wikipedia IPv4 header comes out byte for byte', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '192.168.0.1', dst: '192.168.0.199', flags: { df: true } },
    udp: { sport: 1, dport: 2 },
    payload: Buffer.alloc(0x73 - 28),
  });
  assert.equal(pkt.subarray(0, 20).toString('hex'), '45000073000040004011b861c0a80001c0a800c7');
});

void test('Ethernet defaults, overrides and omission', () => {
  const v4 = buildPacket({ ipv4: { src: '10.0.0.1', dst: '10.0.0.2', protocol: 253 } });
  assert.equal(v4.subarray(0, 14).toString('hex'), '020000000002' + '020000000001' + '0800');
  const custom = buildPacket({
    eth: { src: 'aa:aa:aa:aa:aa:aa', dst: 'bb:bb:bb:bb:bb:bb', type: 0x88b5 },
    payload: 'x',
  });
  assert.equal(custom.toString('hex'), 'bbbbbbbbbbbb' + 'aaaaaaaaaaaa' + '88b5' + '78');
  const bare = buildPacket({ eth: null, ipv6: { src: '::1', dst: '::1', nextHeader: 59 } });
  assert.equal(bare.length, 40);
  assert.equal(bare[0], 0x60);
  assert.throws(() => buildPacket({ payload: 'x' }), /eth\.type: required/);
});

void test('IPv4 fields, flags and fragment offset land in the right bits', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: {
      src: '1.2.3.4',
      dst: '5.6.7.8',
      ttl: 3,
      tos: 0xb8,
      id: 0xbeef,
      flags: { mf: true, reserved: true },
      fragOffset: 0x1abc,
      protocol: 17,
    },
    payload: Buffer.alloc(8),
  });
  assert.equal(pkt.readUInt8(1), 0xb8);
  assert.equal(pkt.readUInt16BE(2), 28);
  assert.equal(pkt.readUInt16BE(4), 0xbeef);
  assert.equal(pkt.readUInt16BE(6), 0x8000 | 0x2000 | 0x1abc);
  assert.equal(pkt.readUInt8(8), 3);
  assert.equal(pkt.readUInt8(9), 17);
});

void test('IPv4 options are padded to 4 bytes and counted in IHL', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '1.2.3.4', dst: '5.6.7.8', options: Buffer.from([0x94, 0x04, 0x00, 0x00, 0x01]) },
    udp: { sport: 1, dport: 2 },
  });
  assert.equal(pkt[0], 0x47);
  assert.equal(pkt.subarray(20, 28).toString('hex'), '9404000001000000');
  assert.equal(pkt.readUInt16BE(2), 28 + 8);
  assert.throws(
    () => buildPacket({ ipv4: { src: '1.2.3.4', dst: '5.6.7.8', options: Buffer.alloc(41) } }),
    /ipv4\.options: 44 bytes exceed/,
  );
});

void test('overrides are written verbatim', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '1.2.3.4', dst: '5.6.7.8', checksum: 0xdead, totalLength: 1000 },
    udp: { sport: 1, dport: 2, checksum: 0, length: 99 },
  });
  assert.equal(pkt.readUInt16BE(10), 0xdead);
  assert.equal(pkt.readUInt16BE(2), 1000);
  assert.equal(pkt.readUInt16BE(24), 99);
  assert.equal(pkt.readUInt16BE(26), 0);
  const tcp = buildPacket({
    eth: null,
    ipv4: { src: '1.2.3.4', dst: '5.6.7.8' },
    tcp: { sport: 1, dport: 2, checksum: 0x1234, dataOffset: 4, flags: 0xff },
  });
  assert.equal(tcp.readUInt16BE(36), 0x1234);
  assert.equal(tcp.readUInt8(32), 0x40);
  assert.equal(tcp.readUInt8(33), 0xff);
});

void test('a computed UDP checksum of zero is sent as 0xffff', () => {
  // Appending the probe's checksum as a payload word makes the sum 0xffff (x + ~x), so the
  // computed checksum is 0; the probe already had 2 payload bytes so lengths do not change.
  const base = {
    eth: null,
    ipv4: { src: '10.0.0.1', dst: '10.0.0.2' },
    udp: { sport: 1, dport: 2 },
  };
  const probe = buildPacket({ ...base, payload: Buffer.alloc(2) });
  const csum = probe.readUInt16BE(26);
  const fill = Buffer.alloc(2);
  fill.writeUInt16BE(csum, 0);
  const pkt = buildPacket({ ...base, payload: fill });
  assert.equal(pkt.readUInt16BE(26), 0xffff);
});

void test('TCP flags accept letters, objects and bytes alike', () => {
  const flagsOf = (flags: TcpSpec['flags']): number =>
    buildPacket({
      eth: null,
      ipv4: { src: '1.1.1.1', dst: '2.2.2.2' },
      tcp: { sport: 1, dport: 2, flags },
    }).readUInt8(33);
  assert.equal(flagsOf('SA'), 0x12);
  assert.equal(flagsOf('as'), 0x12);
  assert.equal(flagsOf({ syn: true, ack: true }), 0x12);
  assert.equal(flagsOf('FSRPAUEC'), 0xff);
  assert.equal(flagsOf(undefined), 0);
  assert.throws(() => flagsOf('SX'), /unknown flag letter "X"/);
});

void test('ICMP rest carries an MTU and excludes id/seq', () => {
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '1.1.1.1', dst: '2.2.2.2' },
    icmp: { type: 3, code: 4, rest: 1400 },
  });
  assert.equal(pkt.subarray(24, 28).toString('hex'), '00000578');
  assert.throws(
    () =>
      buildPacket({ ipv4: { src: '1.1.1.1', dst: '2.2.2.2' }, icmp: { type: 3, rest: 1, id: 2 } }),
    /either rest or id\/seq/,
  );
});

void test('buildInnerIp keeps the IP header plus 8 bytes and the original lengths', () => {
  const spec = {
    ipv4: { src: '10.0.0.1', dst: '10.0.0.2', options: Buffer.from([1, 1, 1, 1]) },
    tcp: { sport: 1234, dport: 80, seq: 0xaabbccdd },
    payload: Buffer.alloc(100),
  };
  const inner = buildInnerIp({ ...spec, eth: {} });
  assert.equal(inner.length, 24 + 8);
  assert.equal(inner[0], 0x46);
  assert.equal(inner.readUInt16BE(2), 24 + 20 + 100);
  assert.equal(inner.readUInt32BE(28), 0xaabbccdd);
  assert.equal(buildInnerIp(spec, { l4Bytes: 20 }).length, 44);
  assert.equal(buildInnerIp(spec, { l4Bytes: Infinity }).length, 144);
  const v6 = buildInnerIp({
    ipv6: { src: '::1', dst: '::2' },
    udp: { sport: 1, dport: 2 },
    payload: 'xyz',
  });
  assert.equal(v6.length, 48);
  assert.equal(v6.readUInt16BE(4), 11);
});

void test('an ICMP error built from a spec quotes buildInnerIp output', () => {
  const innerSpec = {
    ipv4: { src: '10.0.0.2', dst: '10.0.0.1' },
    udp: { sport: 53, dport: 5353 },
    payload: 'abcdefgh',
  };
  const pkt = buildPacket({
    eth: null,
    ipv4: { src: '10.0.0.254', dst: '10.0.0.2' },
    icmp: { type: 3, code: 3, inner: innerSpec },
  });
  assert.deepEqual(pkt.subarray(28), buildInnerIp(innerSpec));
  assert.equal(pkt.length, 20 + 8 + 28);
});

void test('inconsistent specs are rejected with the offending layer named', () => {
  const v4 = { src: '1.1.1.1', dst: '2.2.2.2' };
  const v6 = { src: '::1', dst: '::2' };
  assert.throws(() => buildPacket({ ipv4: v4, ipv6: v6 }), /either ipv4 or ipv6/);
  assert.throws(
    () => buildPacket({ ipv4: v4, tcp: { sport: 1, dport: 2 }, udp: { sport: 1, dport: 2 } }),
    /more than one L4 layer \(tcp, udp\)/,
  );
  assert.throws(() => buildPacket({ tcp: { sport: 1, dport: 2 } }), /tcp: needs an ipv4 or ipv6/);
  assert.throws(() => buildPacket({ ipv6: v6, icmp: { type: 8 } }), /icmp: needs ipv4/);
  assert.throws(() => buildPacket({ ipv4: v4, icmpv6: { type: 128 } }), /icmpv6: needs ipv6/);
  assert.throws(() => buildPacket({ ipv4: v4 }), /ipv4\.protocol: required/);
  assert.throws(
    () => buildPacket({ ipv4: { ...v4, ttl: 256 }, udp: { sport: 1, dport: 2 } }),
    /ipv4\.ttl: 256/,
  );
  assert.throws(
    () => buildPacket({ ipv4: v4, udp: { sport: 70000, dport: 2 } }),
    /udp\.sport: 70000/,
  );
  assert.throws(
    () => buildPacket({ ipv4: v4, icmp: { type: 3, inner: Buffer.alloc(28) }, payload: 'x' }),
    /either inner or payload/,
  );
  assert.throws(() => buildPacket({ ipv4: { ...v4, src: '1.1.1', protocol: 1 } }), /invalid IPv4/);
});
