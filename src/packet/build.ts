// Builds packets from a plain-object description.
//
// Rules, so that a spec reads the same way everywhere:
// - Ethernet is included unless `eth: null`; `eth: {}` or leaving it out both mean the default
//   MACs 02:00:00:00:00:01 -> 02:00:00:00:00:02 and an ethertype inferred from the IP layer.
//   `eth: null` yields a bare IP packet, which is what an ICMP error quotes.
// - At most one of ipv4/ipv6 and at most one of tcp/udp/icmp/icmpv6. An L4 layer needs an IP
//   layer (its checksum covers a pseudo-header); icmp goes with ipv4, icmpv6 with ipv6.
// - Lengths, protocol numbers and checksums are computed unless given explicitly; explicit
//   values are written verbatim, which is how malformed packets are crafted.
// - A computed UDP checksum of 0 is sent as 0xffff (RFC 768); an explicit `checksum: 0` stays
//   0, meaning "no checksum" over IPv4.
// - Nothing is padded to the 60-byte Ethernet minimum: BPF_PROG_TEST_RUN does not need it and
//   padding would hide length bugs.

import { toAddrBytes } from './addr.js';
import type { AddrInput } from './addr.js';
import { internetChecksum, transportChecksum } from './checksum.js';
import {
  DEFAULT_DST_MAC,
  DEFAULT_SRC_MAC,
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from './constants.js';
import { checkUint } from './errors.js';
import { encodeIpv4Options, encodeTcpOptions } from './options.js';
import { tcpFlagsByte } from './tcp-flags.js';
import type { TcpFlags } from './tcp-flags.js';
import type { Ipv4Option, TcpOption } from './options.js';

export interface EthSpec {
  src?: AddrInput;
  dst?: AddrInput;
  /** Ethertype; inferred from the IP layer when omitted. */
  type?: number;
}

export interface Ipv4Spec {
  src: AddrInput;
  dst: AddrInput;
  /** Default 64. */
  ttl?: number;
  /** Whole TOS byte (DSCP << 2 | ECN). Default 0. */
  tos?: number;
  /** Default 0. */
  id?: number;
  flags?: { df?: boolean; mf?: boolean; reserved?: boolean };
  /** Fragment offset as on the wire, in 8-byte units. */
  fragOffset?: number;
  /** Raw option bytes or decoded options; zero-padded to a multiple of 4 bytes. */
  options?: Uint8Array | readonly Ipv4Option[];
  /** Inferred from the L4 layer; required when there is none. */
  protocol?: number;
  /** Overrides the computed total length. */
  totalLength?: number;
  /** Overrides the computed header checksum. */
  checksum?: number;
}

export interface Ipv6Spec {
  src: AddrInput;
  dst: AddrInput;
  /** Default 64. */
  hopLimit?: number;
  /** Default 0. */
  trafficClass?: number;
  /** Default 0. */
  flowLabel?: number;
  /** Inferred from the L4 layer; required when there is none. */
  nextHeader?: number;
  /** Overrides the computed payload length. */
  payloadLength?: number;
}

export interface TcpSpec {
  sport: number;
  dport: number;
  /** Default 0. */
  seq?: number;
  /** Default 0. */
  ack?: number;
  /**
   * Default none. A string uses one letter per flag, in any order: F S R P A U E C
   * (e.g. 'SA' for SYN+ACK); a number is the raw flags byte.
   */
  flags?: TcpFlags | string | number;
  /** Default 65535. */
  window?: number;
  /** Default 0. */
  urgent?: number;
  /** Decoded options or raw option bytes; zero-padded to a multiple of 4 bytes. */
  options?: Uint8Array | readonly TcpOption[];
  /** Overrides the computed data offset (in 32-bit words). */
  dataOffset?: number;
  checksum?: number;
}

export interface UdpSpec {
  sport: number;
  dport: number;
  /** Overrides the computed length. */
  length?: number;
  /** Overrides the computed checksum; 0 means "no checksum" for IPv4. */
  checksum?: number;
}

export interface IcmpSpec {
  type: number;
  /** Default 0. */
  code?: number;
  /** Echo identifier: the high half of `rest`. */
  id?: number;
  /** Echo sequence number: the low half of `rest`. */
  seq?: number;
  /**
   * The 4 bytes after the checksum as one big-endian number, e.g. the next-hop MTU of a
   * "fragmentation needed" (low 16 bits) or the MTU of an ICMPv6 "packet too big".
   * Mutually exclusive with id/seq.
   */
  rest?: number;
  /**
   * Quoted packet of an error message. A spec is built with `buildInnerIp` (IP header plus 8
   * bytes); pass bytes to control the quote exactly. Mutually exclusive with `payload`.
   */
  inner?: Uint8Array | PacketSpec;
  checksum?: number;
}

export interface PacketSpec {
  /** Omitted or {} means default Ethernet header; null means none. */
  eth?: EthSpec | null;
  ipv4?: Ipv4Spec;
  ipv6?: Ipv6Spec;
  tcp?: TcpSpec;
  udp?: UdpSpec;
  icmp?: IcmpSpec;
  icmpv6?: IcmpSpec;
  /** Bytes after the last header; a string is UTF-8 encoded. */
  payload?: Uint8Array | string;
}

function payloadBytes(payload: Uint8Array | string | undefined): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
}

function buildTcp(t: TcpSpec, body: Buffer, src: Buffer, dst: Buffer): Buffer {
  const opts = t.options ? encodeTcpOptions(t.options) : Buffer.alloc(0);
  const hdr = Buffer.alloc(20 + opts.length);
  hdr.writeUInt16BE(checkUint('tcp.sport', t.sport, 16), 0);
  hdr.writeUInt16BE(checkUint('tcp.dport', t.dport, 16), 2);
  hdr.writeUInt32BE(checkUint('tcp.seq', t.seq ?? 0, 32), 4);
  hdr.writeUInt32BE(checkUint('tcp.ack', t.ack ?? 0, 32), 8);
  hdr.writeUInt8(checkUint('tcp.dataOffset', t.dataOffset ?? hdr.length / 4, 4) << 4, 12);
  hdr.writeUInt8(tcpFlagsByte(t.flags), 13);
  hdr.writeUInt16BE(checkUint('tcp.window', t.window ?? 65535, 16), 14);
  hdr.writeUInt16BE(checkUint('tcp.urgent', t.urgent ?? 0, 16), 18);
  opts.copy(hdr, 20);
  const seg = Buffer.concat([hdr, body]);
  const csum = t.checksum ?? transportChecksum(src, dst, IPPROTO_TCP, seg);
  seg.writeUInt16BE(checkUint('tcp.checksum', csum, 16), 16);
  return seg;
}

function buildUdp(u: UdpSpec, body: Buffer, src: Buffer, dst: Buffer): Buffer {
  const seg = Buffer.alloc(8 + body.length);
  seg.writeUInt16BE(checkUint('udp.sport', u.sport, 16), 0);
  seg.writeUInt16BE(checkUint('udp.dport', u.dport, 16), 2);
  seg.writeUInt16BE(checkUint('udp.length', u.length ?? seg.length, 16), 4);
  body.copy(seg, 8);
  let csum = u.checksum;
  if (csum === undefined) {
    // The pseudo-header carries the length field, which differs from the datagram's real
    // length only in crafted packets; use it so the checksum matches what a receiver checks.
    csum = transportChecksum(src, dst, IPPROTO_UDP, seg, seg.readUInt16BE(4));
    if (csum === 0) csum = 0xffff;
  }
  seg.writeUInt16BE(checkUint('udp.checksum', csum, 16), 6);
  return seg;
}

function icmpRest(c: IcmpSpec, layer: string): number {
  if (c.rest !== undefined) {
    if (c.id !== undefined || c.seq !== undefined) {
      throw new Error(`${layer}: give either rest or id/seq, not both`);
    }
    return checkUint(`${layer}.rest`, c.rest, 32);
  }
  const id = checkUint(`${layer}.id`, c.id ?? 0, 16);
  const seq = checkUint(`${layer}.seq`, c.seq ?? 0, 16);
  return id * 0x10000 + seq;
}

function icmpBody(c: IcmpSpec, payload: Buffer, hasPayload: boolean, layer: string): Buffer {
  if (c.inner === undefined) return payload;
  if (hasPayload) throw new Error(`${layer}: give either inner or payload, not both`);
  return c.inner instanceof Uint8Array ? Buffer.from(c.inner) : buildInnerIp(c.inner);
}

function buildIcmp(
  c: IcmpSpec,
  body: Buffer,
  layer: 'icmp' | 'icmpv6',
  src: Buffer,
  dst: Buffer,
): Buffer {
  const seg = Buffer.alloc(8 + body.length);
  seg.writeUInt8(checkUint(`${layer}.type`, c.type, 8), 0);
  seg.writeUInt8(checkUint(`${layer}.code`, c.code ?? 0, 8), 1);
  seg.writeUInt32BE(icmpRest(c, layer), 4);
  body.copy(seg, 8);
  const csum =
    c.checksum ??
    (layer === 'icmp' ? internetChecksum(seg) : transportChecksum(src, dst, IPPROTO_ICMPV6, seg));
  seg.writeUInt16BE(checkUint(`${layer}.checksum`, csum, 16), 2);
  return seg;
}

function buildIpv4(ip: Ipv4Spec, protocol: number | undefined, l4: Buffer): Buffer {
  const opts = ip.options ? encodeIpv4Options(ip.options) : Buffer.alloc(0);
  const hdr = Buffer.alloc(20 + opts.length);
  const proto = ip.protocol ?? protocol;
  if (proto === undefined) throw new Error('ipv4.protocol: required when there is no L4 layer');
  hdr.writeUInt8(0x40 | (hdr.length / 4), 0);
  hdr.writeUInt8(checkUint('ipv4.tos', ip.tos ?? 0, 8), 1);
  hdr.writeUInt16BE(checkUint('ipv4.totalLength', ip.totalLength ?? hdr.length + l4.length, 16), 2);
  hdr.writeUInt16BE(checkUint('ipv4.id', ip.id ?? 0, 16), 4);
  const f = ip.flags ?? {};
  const fragWord =
    (f.reserved ? 0x8000 : 0) |
    (f.df ? 0x4000 : 0) |
    (f.mf ? 0x2000 : 0) |
    checkUint('ipv4.fragOffset', ip.fragOffset ?? 0, 13);
  hdr.writeUInt16BE(fragWord, 6);
  hdr.writeUInt8(checkUint('ipv4.ttl', ip.ttl ?? 64, 8), 8);
  hdr.writeUInt8(checkUint('ipv4.protocol', proto, 8), 9);
  toAddrBytes(ip.src, 'ipv4').copy(hdr, 12);
  toAddrBytes(ip.dst, 'ipv4').copy(hdr, 16);
  opts.copy(hdr, 20);
  hdr.writeUInt16BE(checkUint('ipv4.checksum', ip.checksum ?? internetChecksum(hdr), 16), 10);
  return Buffer.concat([hdr, l4]);
}

function buildIpv6(ip: Ipv6Spec, nextHeader: number | undefined, l4: Buffer): Buffer {
  const hdr = Buffer.alloc(40);
  const nh = ip.nextHeader ?? nextHeader;
  if (nh === undefined) throw new Error('ipv6.nextHeader: required when there is no L4 layer');
  const tc = checkUint('ipv6.trafficClass', ip.trafficClass ?? 0, 8);
  const flow = checkUint('ipv6.flowLabel', ip.flowLabel ?? 0, 20);
  hdr.writeUInt32BE(((6 << 28) | (tc << 20) | flow) >>> 0, 0);
  hdr.writeUInt16BE(checkUint('ipv6.payloadLength', ip.payloadLength ?? l4.length, 16), 4);
  hdr.writeUInt8(checkUint('ipv6.nextHeader', nh, 8), 6);
  hdr.writeUInt8(checkUint('ipv6.hopLimit', ip.hopLimit ?? 64, 8), 7);
  toAddrBytes(ip.src, 'ipv6').copy(hdr, 8);
  toAddrBytes(ip.dst, 'ipv6').copy(hdr, 24);
  return Buffer.concat([hdr, l4]);
}

function buildEth(eth: EthSpec, inferredType: number | undefined): Buffer {
  const type = eth.type ?? inferredType;
  if (type === undefined) throw new Error('eth.type: required when there is no IP layer');
  const hdr = Buffer.alloc(14);
  toAddrBytes(eth.dst ?? DEFAULT_DST_MAC, 'mac').copy(hdr, 0);
  toAddrBytes(eth.src ?? DEFAULT_SRC_MAC, 'mac').copy(hdr, 6);
  hdr.writeUInt16BE(checkUint('eth.type', type, 16), 12);
  return hdr;
}

/** Builds the packet described by `spec`; see the rules at the top of this file. */
export function buildPacket(spec: PacketSpec): Buffer {
  if (spec.ipv4 && spec.ipv6) throw new Error('packet: give either ipv4 or ipv6, not both');
  const l4Layers = (['tcp', 'udp', 'icmp', 'icmpv6'] as const).filter((k) => spec[k]);
  if (l4Layers.length > 1) {
    throw new Error(`packet: more than one L4 layer (${l4Layers.join(', ')})`);
  }
  const l4Name = l4Layers[0];
  if (l4Name !== undefined && !spec.ipv4 && !spec.ipv6) {
    throw new Error(`${l4Name}: needs an ipv4 or ipv6 layer for its checksum`);
  }
  if (spec.icmp && !spec.ipv4) throw new Error('icmp: needs ipv4 (use icmpv6 with ipv6)');
  if (spec.icmpv6 && !spec.ipv6) throw new Error('icmpv6: needs ipv6 (use icmp with ipv4)');

  const payload = payloadBytes(spec.payload);
  const ip = spec.ipv4 ?? spec.ipv6;
  const family = spec.ipv4 ? 'ipv4' : 'ipv6';
  const src = ip ? toAddrBytes(ip.src, family) : Buffer.alloc(0);
  const dst = ip ? toAddrBytes(ip.dst, family) : Buffer.alloc(0);

  let l4 = payload;
  let protocol: number | undefined;
  if (spec.tcp) {
    l4 = buildTcp(spec.tcp, payload, src, dst);
    protocol = IPPROTO_TCP;
  } else if (spec.udp) {
    l4 = buildUdp(spec.udp, payload, src, dst);
    protocol = IPPROTO_UDP;
  } else if (spec.icmp) {
    const body = icmpBody(spec.icmp, payload, spec.payload !== undefined, 'icmp');
    l4 = buildIcmp(spec.icmp, body, 'icmp', src, dst);
    protocol = IPPROTO_ICMP;
  } else if (spec.icmpv6) {
    const body = icmpBody(spec.icmpv6, payload, spec.payload !== undefined, 'icmpv6');
    l4 = buildIcmp(spec.icmpv6, body, 'icmpv6', src, dst);
    protocol = IPPROTO_ICMPV6;
  }

  let l3 = l4;
  let ethType: number | undefined;
  if (spec.ipv4) {
    l3 = buildIpv4(spec.ipv4, protocol, l4);
    ethType = ETH_P_IP;
  } else if (spec.ipv6) {
    l3 = buildIpv6(spec.ipv6, protocol, l4);
    ethType = ETH_P_IPV6;
  }

  if (spec.eth === null) return l3;
  return Buffer.concat([buildEth(spec.eth ?? {}, ethType), l3]);
}

export interface InnerIpOptions {
  /**
   * Bytes to keep after the IP header (options included). Default 8, the minimum an ICMP
   * error quotes (RFC 792); Infinity keeps the whole packet, as ICMPv6 errors usually do.
   */
  l4Bytes?: number;
}

/**
 * Builds the packet an ICMP error quotes: no Ethernet header (any `eth` is ignored), cut to
 * the IP header plus `l4Bytes`. Length and checksum fields describe the original, uncut
 * packet, exactly as a router quoting it would leave them.
 */
export function buildInnerIp(spec: PacketSpec, opts: InnerIpOptions = {}): Buffer {
  if (!spec.ipv4 && !spec.ipv6) throw new Error('inner packet: needs an ipv4 or ipv6 layer');
  const full = buildPacket({ ...spec, eth: null });
  const ipHeaderLen = spec.ipv4 ? ((full[0] ?? 0) & 0x0f) * 4 : 40;
  const keep = ipHeaderLen + (opts.l4Bytes ?? 8);
  return keep >= full.length ? full : Buffer.from(full.subarray(0, keep));
}
