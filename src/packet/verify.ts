// Checksum verification of a whole packet, reporting each wrong checksum with the value it
// should have had so that a failing datapath test says what to fix.

import { internetChecksum, transportChecksum } from './checksum.js';
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './constants.js';
import { parsePacket } from './parse.js';
import type { ParsedPacket } from './parse.js';

export interface VerifyOptions {
  /** Whether the buffer starts with an Ethernet header. Default true. */
  l2?: boolean;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

function mismatch(what: string, actual: number, expected: number): string {
  return `${what} checksum ${hex(actual)} != expected ${hex(expected)}`;
}

/** Copy of `buf[from, to)` with the 16-bit checksum at `csumAt` (relative) zeroed. */
function zeroed(buf: Buffer, from: number, to: number, csumAt: number): Buffer {
  const copy = Buffer.from(buf.subarray(from, to));
  copy.writeUInt16BE(0, csumAt);
  return copy;
}

/**
 * Lists every wrong checksum in the packet: the IPv4 header, the L4 checksum (TCP, UDP,
 * ICMP, ICMPv6) and the IPv4 header of a packet quoted by an ICMP error. Empty when all are
 * right. The L4 checksum of fragments and the L4 checksum of a quoted packet are not checked,
 * since the bytes they cover are not all present. Throws if the headers cannot be parsed.
 */
export function checksumErrors(buf: Buffer, opts: VerifyOptions = {}): string[] {
  // Options do not affect any checksum, so a deliberately broken one must not stop the check.
  const parsed = parsePacket(buf, { l2: opts.l2 ?? true, decodeOptions: false });
  const errors: string[] = [];
  checkIpv4Header(buf, parsed, '', errors);
  checkL4(buf, parsed, errors);
  for (const icmp of [parsed.icmp, parsed.icmpv6]) {
    let inner = icmp?.inner;
    let prefix = 'inner ';
    while (inner) {
      checkIpv4Header(buf, inner, prefix, errors);
      inner = (inner.icmp ?? inner.icmpv6)?.inner;
      prefix += 'inner ';
    }
  }
  return errors;
}

function checkIpv4Header(buf: Buffer, p: ParsedPacket, prefix: string, errors: string[]): void {
  const ip = p.ipv4;
  if (!ip) return;
  const expected = internetChecksum(zeroed(buf, ip.offset, ip.offset + ip.headerLength, 10));
  if (expected !== ip.checksum) {
    errors.push(mismatch(`${prefix}ipv4 header`, ip.checksum, expected));
  }
}

function checkL4(buf: Buffer, p: ParsedPacket, errors: string[]): void {
  let src: Buffer;
  let dst: Buffer;
  let ipEnd: number;
  if (p.ipv4) {
    const ip = p.ipv4;
    if (ip.flags.mf || ip.fragOffset !== 0) return;
    src = buf.subarray(ip.offset + 12, ip.offset + 16);
    dst = buf.subarray(ip.offset + 16, ip.offset + 20);
    ipEnd = ip.offset + ip.totalLength;
  } else if (p.ipv6) {
    const ip = p.ipv6;
    if (ip.fragment) return;
    src = buf.subarray(ip.offset + 8, ip.offset + 24);
    dst = buf.subarray(ip.offset + 24, ip.offset + 40);
    ipEnd = ip.offset + 40 + ip.payloadLength;
  } else {
    return;
  }

  if (p.tcp) {
    const seg = zeroed(buf, p.tcp.offset, ipEnd, 16);
    const expected = transportChecksum(src, dst, IPPROTO_TCP, seg);
    if (expected !== p.tcp.checksum) errors.push(mismatch('tcp', p.tcp.checksum, expected));
  } else if (p.udp) {
    const udp = p.udp;
    // Over IPv4 a zero checksum means the sender did not compute one (RFC 768).
    if (udp.checksum === 0 && p.ipv4) return;
    const seg = zeroed(buf, udp.offset, Math.min(ipEnd, udp.offset + udp.length), 6);
    let expected = transportChecksum(src, dst, IPPROTO_UDP, seg, udp.length);
    if (expected === 0) expected = 0xffff;
    if (expected !== udp.checksum) errors.push(mismatch('udp', udp.checksum, expected));
  } else if (p.icmp) {
    const expected = internetChecksum(zeroed(buf, p.icmp.offset, ipEnd, 2));
    if (expected !== p.icmp.checksum) errors.push(mismatch('icmp', p.icmp.checksum, expected));
  } else if (p.icmpv6) {
    const seg = zeroed(buf, p.icmpv6.offset, ipEnd, 2);
    const expected = transportChecksum(src, dst, IPPROTO_ICMPV6, seg);
    if (expected !== p.icmpv6.checksum) {
      errors.push(mismatch('icmpv6', p.icmpv6.checksum, expected));
    }
  }
}
