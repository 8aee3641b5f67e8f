// Internet checksum (RFC 1071) and the pseudo-header sums that TCP, UDP and ICMPv6 fold in.
//
// Sums are kept as unfolded non-negative integers so that several regions (pseudo-header,
// header, payload) can be added before the single final fold; each region handed to
// `sum16` must start on an even offset of the checksummed stream, which holds for every
// caller here because all headers have even lengths.

import { toAddrBytes } from './addr.js';
import type { AddrInput } from './addr.js';

/** Adds the big-endian 16-bit words of `data` to `initial`; an odd tail byte is zero-padded. */
export function sum16(data: Uint8Array, initial = 0): number {
  let sum = initial;
  const end = data.length - (data.length % 2);
  for (let i = 0; i < end; i += 2) {
    sum += ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
  }
  if (end < data.length) sum += (data[end] ?? 0) << 8;
  // Folding every so often keeps the sum a small integer however large the input is.
  return sum > 0xffffffff ? fold(sum) : sum;
}

/** Folds carries back into the low 16 bits (end-around carry). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** One's-complement of the folded sum: the value that goes into a checksum field. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** RFC 1071 checksum of the concatenation of `parts` (each but the last of even length). */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) sum = sum16(p, sum);
  return finish(sum);
}

/** Unfolded sum of the IPv4 pseudo-header (RFC 793 / RFC 768). */
export function pseudoHeaderSumV4(
  src: AddrInput,
  dst: AddrInput,
  protocol: number,
  l4Length: number,
): number {
  let sum = sum16(toAddrBytes(src, 'ipv4'));
  sum = sum16(toAddrBytes(dst, 'ipv4'), sum);
  return sum + (protocol & 0xff) + (l4Length & 0xffff);
}

/** Unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1). */
export function pseudoHeaderSumV6(
  src: AddrInput,
  dst: AddrInput,
  nextHeader: number,
  l4Length: number,
): number {
  let sum = sum16(toAddrBytes(src, 'ipv6'));
  sum = sum16(toAddrBytes(dst, 'ipv6'), sum);
  // The upper-layer length is a 32-bit field, so add both of its halves.
  return sum + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + (nextHeader & 0xff);
}

/**
 * Checksum after replacing one 16-bit word, per RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
 * Lets tests predict what an incremental datapath rewrite should produce.
 */
export function incrementalUpdate16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return finish(sum);
}

/**
 * Checksum of a TCP, UDP or ICMPv6 segment including its pseudo-header; the address length
 * (4 or 16 bytes) picks IPv4 or IPv6. The segment's own checksum field must already be zero.
 * `pseudoLength` only needs giving when a UDP length field disagrees with the segment.
 */
export function transportChecksum(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  segment: Uint8Array,
  pseudoLength = segment.length,
): number {
  const pseudo =
    src.length === 4
      ? pseudoHeaderSumV4(src, dst, protocol, pseudoLength)
      : pseudoHeaderSumV6(src, dst, protocol, pseudoLength);
  return finish(sum16(segment, pseudo));
}
