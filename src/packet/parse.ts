// Decodes a packet into the fields of every layer it carries.
//
// Every `offset` is a byte index into the buffer handed to parsePacket, including those
// inside a quoted inner packet, so a test can go straight from a parsed field to raw bytes.
// Malformed input throws a PacketParseError naming the layer and field; the only tolerated
// shortfall is the deliberate truncation of a packet quoted by an ICMP error.

import { formatIPv4, formatIPv6, formatMac } from './addr.js';

import {
  ETH_HLEN,
  ETH_P_IP,
  ETH_P_IPV6,
  ICMP_DEST_UNREACH,
  ICMP_ERROR_TYPES,
  ICMP_FRAG_NEEDED,
  ICMPV6_ERROR_TYPES,
  ICMPV6_PKT_TOOBIG,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_EXT_AH,
  IPV6_EXT_DSTOPTS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOPOPTS,
  IPV6_EXT_ROUTING,
} from './constants.js';
import { PacketParseError, need } from './errors.js';
import { decodeIpv4Options, decodeTcpOptions } from './options.js';
import type { Ipv4Option, TcpOption } from './options.js';
import { decodeTcpFlags } from './tcp-flags.js';
import type { TcpFlags } from './tcp-flags.js';

export interface ParseOptions {
  /** Whether the buffer starts with an Ethernet header. Default true. */
  l2?: boolean;
  /**
   * Accept an IP packet shorter than its length field says, as ICMP errors quote it; an L4
   * header cut short is then reported as `partialL4`. Default false.
   */
  allowTruncated?: boolean;
  /**
   * Decode IPv4 and TCP options. Default true; false leaves `options` empty (`optionsRaw` is
   * still set), for packets whose options are deliberately malformed.
   */
  decodeOptions?: boolean;
}

export interface ParsedEth {
  offset: number;
  dst: string;
  src: string;
  type: number;
}

export interface ParsedIpv4 {
  offset: number;
  version: number;
  ihl: number;
  headerLength: number;
  tos: number;
  dscp: number;
  ecn: number;
  totalLength: number;
  id: number;
  flags: { reserved: boolean; df: boolean; mf: boolean };
  /** In 8-byte units, as on the wire. */
  fragOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: string;
  dst: string;
  options: Ipv4Option[];
  /** The options area as sent, padding included. */
  optionsRaw: Buffer;
}

export interface Ipv6ExtHeader {
  type: number;
  offset: number;
  length: number;
}

export interface ParsedIpv6 {
  offset: number;
  version: number;
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
  /** Extension headers stepped over, in order. */
  extHeaders: Ipv6ExtHeader[];
  /** Present when a fragment header was found; `offset` is in 8-byte units. */
  fragment?: { offset: number; more: boolean; id: number };
  /** The next-header value after the last extension header. */
  upperProtocol: number;
}

export interface ParsedTcp {
  offset: number;
  headerLength: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  dataOffset: number;
  flagsByte: number;
  flags: Required<TcpFlags>;
  /** Set flags as letters in the order F S R P A U E C, e.g. 'SA'. */
  flagString: string;
  window: number;
  checksum: number;
  urgent: number;
  options: TcpOption[];
  /** The options area as sent, padding included. */
  optionsRaw: Buffer;
}

export interface ParsedUdp {
  offset: number;
  sport: number;
  dport: number;
  length: number;
  checksum: number;
}

export interface ParsedIcmp {
  offset: number;
  type: number;
  code: number;
  checksum: number;
  /** The 4 bytes after the checksum as one big-endian number. */
  rest: number;
  /** High half of `rest` (the echo identifier). */
  id: number;
  /** Low half of `rest` (the echo sequence number). */
  seq: number;
  /** For "fragmentation needed" (ICMP 3/4) and "packet too big" (ICMPv6 2). */
  mtu?: number;
  /** The quoted packet of an error message (ICMP 3,4,5,11,12; ICMPv6 1,2,3,4). */
  inner?: ParsedPacket;
}

/** An L4 header cut short inside a truncated quoted packet; fields present when quoted. */
export interface PartialL4 {
  protocol: number;
  offset: number;
  bytes: Buffer;
  sport?: number;
  dport?: number;
  /** TCP only. */
  seq?: number;
}

export interface ParsedPacket {
  eth?: ParsedEth;
  ipv4?: ParsedIpv4;
  ipv6?: ParsedIpv6;
  tcp?: ParsedTcp;
  udp?: ParsedUdp;
  icmp?: ParsedIcmp;
  icmpv6?: ParsedIcmp;
  partialL4?: PartialL4;
  /** Bytes after the last decoded header, up to the end of the IP packet. */
  payload: Buffer;
  payloadOffset: number;
  /** Bytes after the end of the IP packet (e.g. Ethernet padding). */
  trailer: Buffer;
  /** True when the IP packet is shorter than its length field (quoted packets only). */
  truncated: boolean;
}

const MAX_INNER_DEPTH = 3;

interface Ctx {
  buf: Buffer;
  /** Prefix for error layer names, e.g. "icmp.inner." inside a quoted packet. */
  prefix: string;
  allowTruncated: boolean;
  decodeOptions: boolean;
  depth: number;
}

export function parsePacket(buf: Buffer, opts: ParseOptions = {}): ParsedPacket {
  const ctx: Ctx = {
    buf,
    prefix: '',
    allowTruncated: opts.allowTruncated ?? false,
    decodeOptions: opts.decodeOptions ?? true,
    depth: 0,
  };
  return parseFrom(ctx, 0, buf.length, opts.l2 ?? true);
}

function parseFrom(ctx: Ctx, start: number, end: number, l2: boolean): ParsedPacket {
  const { buf } = ctx;
  const out: ParsedPacket = {
    payload: Buffer.alloc(0),
    payloadOffset: start,
    trailer: Buffer.alloc(0),
    truncated: false,
  };
  let off = start;
  let l3: 'ipv4' | 'ipv6' | undefined;
  if (l2) {
    need(end, off, ETH_HLEN, `${ctx.prefix}eth`, 'header');
    const type = buf.readUInt16BE(off + 12);
    out.eth = {
      offset: off,
      dst: formatMac(buf.subarray(off, off + 6)),
      src: formatMac(buf.subarray(off + 6, off + 12)),
      type,
    };
    off += ETH_HLEN;
    l3 = type === ETH_P_IP ? 'ipv4' : type === ETH_P_IPV6 ? 'ipv6' : undefined;
  } else {
    need(end, off, 1, `${ctx.prefix}ip`, 'version');
    const version = buf.readUInt8(off) >> 4;
    if (version !== 4 && version !== 6) {
      throw new PacketParseError(`${ctx.prefix}ip`, 'version', `${version} is neither 4 nor 6`);
    }
    l3 = version === 4 ? 'ipv4' : 'ipv6';
  }

  if (l3 === undefined) {
    setPayload(out, buf, off, end);
    return out;
  }

  let l3End: number;
  let ipEnd: number;
  let protocol: number;
  let l4Off: number;
  let parseL4: boolean;
  if (l3 === 'ipv4') {
    const ip = parseIpv4(ctx, off, end);
    out.ipv4 = ip;
    ipEnd = off + ip.totalLength;
    protocol = ip.protocol;
    l4Off = off + ip.headerLength;
    // Only the first fragment carries the L4 header.
    parseL4 = ip.fragOffset === 0;
  } else {
    const ip = parseIpv6(ctx, off, end);
    out.ipv6 = ip;
    ipEnd = off + 40 + ip.payloadLength;
    protocol = ip.upperProtocol;
    const last = ip.extHeaders[ip.extHeaders.length - 1];
    l4Off = last ? last.offset + last.length : off + 40;
    parseL4 = (ip.fragment?.offset ?? 0) === 0;
  }
  if (ipEnd > end) {
    if (!ctx.allowTruncated) {
      const field = l3 === 'ipv4' ? 'totalLength' : 'payloadLength';
      throw new PacketParseError(
        `${ctx.prefix}${l3}`,
        field,
        `packet ends at offset ${ipEnd} but only ${end} bytes are present`,
      );
    }
    out.truncated = true;
    l3End = end;
  } else {
    l3End = ipEnd;
    out.trailer = Buffer.from(buf.subarray(ipEnd, end));
  }
  let payloadOff = l4Off;
  let payloadEnd = l3End;
  const avail = l3End - l4Off;
  if (parseL4 && protocol === IPPROTO_TCP) {
    const tcp = avail >= 20 ? parseTcp(ctx, l4Off, l3End) : undefined;
    if (tcp) {
      out.tcp = tcp;
      payloadOff = l4Off + tcp.headerLength;
    } else {
      out.partialL4 = partialL4(ctx, protocol, l4Off, l3End, 20);
      payloadOff = l3End;
    }
  } else if (parseL4 && protocol === IPPROTO_UDP) {
    if (avail >= 8) {
      const udp = parseUdp(ctx, l4Off, l3End);
      out.udp = udp;
      payloadOff = l4Off + 8;
      payloadEnd = Math.min(l3End, l4Off + udp.length);
    } else {
      out.partialL4 = partialL4(ctx, protocol, l4Off, l3End, 8);
      payloadOff = l3End;
    }
  } else if (
    parseL4 &&
    ((l3 === 'ipv4' && protocol === IPPROTO_ICMP) || (l3 === 'ipv6' && protocol === IPPROTO_ICMPV6))
  ) {
    const layer = l3 === 'ipv4' ? 'icmp' : 'icmpv6';
    if (avail >= 8) {
      out[layer] = parseIcmp(ctx, layer, l4Off, l3End);
      payloadOff = l4Off + 8;
    } else {
      out.partialL4 = partialL4(ctx, protocol, l4Off, l3End, 8);
      payloadOff = l3End;
    }
  }
  setPayload(out, buf, payloadOff, payloadEnd);
  return out;
}

function setPayload(out: ParsedPacket, buf: Buffer, from: number, to: number): void {
  out.payloadOffset = from;
  out.payload = Buffer.from(buf.subarray(from, Math.max(from, to)));
}

function parseIpv4(ctx: Ctx, off: number, end: number): ParsedIpv4 {
  const { buf } = ctx;
  const layer = `${ctx.prefix}ipv4`;
  need(end, off, 20, layer, 'header');
  const version = buf.readUInt8(off) >> 4;
  if (version !== 4) throw new PacketParseError(layer, 'version', `${version} != 4`);
  const ihl = buf.readUInt8(off) & 0x0f;
  if (ihl < 5) throw new PacketParseError(layer, 'ihl', `${ihl} is below the minimum 5`);
  const headerLength = ihl * 4;
  need(end, off, headerLength, layer, 'options');
  const totalLength = buf.readUInt16BE(off + 2);
  if (totalLength < headerLength) {
    throw new PacketParseError(
      layer,
      'totalLength',
      `${totalLength} is shorter than the ${headerLength}-byte header`,
    );
  }
  const tos = buf.readUInt8(off + 1);
  const frag = buf.readUInt16BE(off + 6);
  const optionsRaw = Buffer.from(buf.subarray(off + 20, off + headerLength));
  const options = decodeWith(ctx, decodeIpv4Options, optionsRaw);
  return {
    offset: off,
    version,
    ihl,
    headerLength,
    tos,
    dscp: tos >> 2,
    ecn: tos & 3,
    totalLength,
    id: buf.readUInt16BE(off + 4),
    flags: {
      reserved: (frag & 0x8000) !== 0,
      df: (frag & 0x4000) !== 0,
      mf: (frag & 0x2000) !== 0,
    },
    fragOffset: frag & 0x1fff,
    ttl: buf.readUInt8(off + 8),
    protocol: buf.readUInt8(off + 9),
    checksum: buf.readUInt16BE(off + 10),
    src: formatIPv4(buf.subarray(off + 12, off + 16)),
    dst: formatIPv4(buf.subarray(off + 16, off + 20)),
    options,
    optionsRaw,
  };
}

function parseIpv6(ctx: Ctx, off: number, end: number): ParsedIpv6 {
  const { buf } = ctx;
  const layer = `${ctx.prefix}ipv6`;
  need(end, off, 40, layer, 'header');
  const word = buf.readUInt32BE(off);
  const version = word >>> 28;
  if (version !== 6) throw new PacketParseError(layer, 'version', `${version} != 6`);
  const nextHeader = buf.readUInt8(off + 6);
  const ip: ParsedIpv6 = {
    offset: off,
    version,
    trafficClass: (word >>> 20) & 0xff,
    flowLabel: word & 0xfffff,
    payloadLength: buf.readUInt16BE(off + 4),
    nextHeader,
    hopLimit: buf.readUInt8(off + 7),
    src: formatIPv6(buf.subarray(off + 8, off + 24)),
    dst: formatIPv6(buf.subarray(off + 24, off + 40)),
    extHeaders: [],
    upperProtocol: nextHeader,
  };
  const extEnd = Math.min(end, off + 40 + ip.payloadLength);
  let p = off + 40;
  let nh = nextHeader;
  const extTypes = [
    IPV6_EXT_HOPOPTS,
    IPV6_EXT_ROUTING,
    IPV6_EXT_FRAGMENT,
    IPV6_EXT_AH,
    IPV6_EXT_DSTOPTS,
  ];
  // Stop after a non-first fragment: what follows is the middle of the original payload.
  while (extTypes.includes(nh) && (ip.fragment?.offset ?? 0) === 0) {
    need(extEnd, p, 2, layer, `extHeader[${ip.extHeaders.length}]`);
    const hdrLen = buf.readUInt8(p + 1);
    const length =
      nh === IPV6_EXT_FRAGMENT ? 8 : nh === IPV6_EXT_AH ? (hdrLen + 2) * 4 : (hdrLen + 1) * 8;
    need(extEnd, p, length, layer, `extHeader[${ip.extHeaders.length}]`);
    if (nh === IPV6_EXT_FRAGMENT) {
      const fo = buf.readUInt16BE(p + 2);
      ip.fragment = { offset: fo >> 3, more: (fo & 1) !== 0, id: buf.readUInt32BE(p + 4) };
    }
    ip.extHeaders.push({ type: nh, offset: p, length });
    nh = buf.readUInt8(p);
    p += length;
  }
  ip.upperProtocol = nh;
  return ip;
}

function parseTcp(ctx: Ctx, off: number, end: number): ParsedTcp | undefined {
  const { buf } = ctx;
  const layer = `${ctx.prefix}tcp`;
  const dataOffset = buf.readUInt8(off + 12) >> 4;
  if (dataOffset < 5) {
    throw new PacketParseError(layer, 'dataOffset', `${dataOffset} is below the minimum 5`);
  }
  const headerLength = dataOffset * 4;
  if (off + headerLength > end) {
    if (ctx.allowTruncated) return undefined;
    need(end, off, headerLength, layer, 'options');
  }
  const flagsByte = buf.readUInt8(off + 13);
  const { flags, letters } = decodeTcpFlags(flagsByte);
  const optionsRaw = Buffer.from(buf.subarray(off + 20, off + headerLength));
  const options = decodeWith(ctx, decodeTcpOptions, optionsRaw);
  return {
    offset: off,
    headerLength,
    sport: buf.readUInt16BE(off),
    dport: buf.readUInt16BE(off + 2),
    seq: buf.readUInt32BE(off + 4),
    ack: buf.readUInt32BE(off + 8),
    dataOffset,
    flagsByte,
    flags,
    flagString: letters,
    window: buf.readUInt16BE(off + 14),
    checksum: buf.readUInt16BE(off + 16),
    urgent: buf.readUInt16BE(off + 18),
    options,
    optionsRaw,
  };
}

function parseUdp(ctx: Ctx, off: number, end: number): ParsedUdp {
  const { buf } = ctx;
  const length = buf.readUInt16BE(off + 4);
  if (length < 8) {
    throw new PacketParseError(`${ctx.prefix}udp`, 'length', `${length} is below the minimum 8`);
  }
  if (off + length > end && !ctx.allowTruncated) {
    throw new PacketParseError(
      `${ctx.prefix}udp`,
      'length',
      `${length} runs past the end of the IP packet (${end - off} bytes left)`,
    );
  }
  return {
    offset: off,
    sport: buf.readUInt16BE(off),
    dport: buf.readUInt16BE(off + 2),
    length,
    checksum: buf.readUInt16BE(off + 6),
  };
}

function parseIcmp(ctx: Ctx, layer: 'icmp' | 'icmpv6', off: number, end: number): ParsedIcmp {
  const { buf } = ctx;
  const type = buf.readUInt8(off);
  const code = buf.readUInt8(off + 1);
  const rest = buf.readUInt32BE(off + 4);
  const icmp: ParsedIcmp = {
    offset: off,
    type,
    code,
    checksum: buf.readUInt16BE(off + 2),
    rest,
    id: rest >>> 16,
    seq: rest & 0xffff,
  };
  if (layer === 'icmp' && type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) {
    icmp.mtu = rest & 0xffff;
  } else if (layer === 'icmpv6' && type === ICMPV6_PKT_TOOBIG) {
    icmp.mtu = rest;
  }
  const isError = (layer === 'icmp' ? ICMP_ERROR_TYPES : ICMPV6_ERROR_TYPES).has(type);
  if (isError && off + 8 < end && ctx.depth < MAX_INNER_DEPTH) {
    const inner: Ctx = {
      buf,
      prefix: `${ctx.prefix}${layer}.inner.`,
      allowTruncated: true,
      decodeOptions: ctx.decodeOptions,
      depth: ctx.depth + 1,
    };
    icmp.inner = parseFrom(inner, off + 8, end, false);
  }
  return icmp;
}

function partialL4(ctx: Ctx, protocol: number, off: number, end: number, full: number): PartialL4 {
  if (!ctx.allowTruncated) {
    const name =
      protocol === IPPROTO_TCP
        ? 'tcp'
        : protocol === IPPROTO_UDP
          ? 'udp'
          : protocol === IPPROTO_ICMP
            ? 'icmp'
            : 'icmpv6';
    need(end, off, full, `${ctx.prefix}${name}`, 'header');
  }
  const { buf } = ctx;
  const part: PartialL4 = { protocol, offset: off, bytes: Buffer.from(buf.subarray(off, end)) };
  if ((protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) && end - off >= 4) {
    part.sport = buf.readUInt16BE(off);
    part.dport = buf.readUInt16BE(off + 2);
  }
  if (protocol === IPPROTO_TCP && end - off >= 8) part.seq = buf.readUInt32BE(off + 4);
  return part;
}

function decodeWith<T>(ctx: Ctx, decode: (raw: Buffer) => T[], raw: Buffer): T[] {
  if (!ctx.decodeOptions) return [];
  try {
    return decode(raw);
  } catch (e) {
    throw withPrefix(e, ctx.prefix);
  }
}

function withPrefix(e: unknown, prefix: string): unknown {
  if (prefix === '' || !(e instanceof PacketParseError)) return e;
  const detail = e.message.slice(`${e.layer}.${e.field}: `.length);
  return new PacketParseError(`${prefix}${e.layer}`, e.field, detail);
}
