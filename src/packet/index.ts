// Packet builder and parser for datapath tests: craft input frames for BPF_PROG_TEST_RUN and
// assert rewritten headers and checksums byte for byte.

export {
  formatIp,
  formatIPv4,
  formatIPv6,
  formatMac,
  parseIp,
  parseIPv4,
  parseIPv6,
  parseMac,
} from './addr.js';
export type { AddrInput } from './addr.js';
export {
  finish,
  fold,
  incrementalUpdate16,
  internetChecksum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sum16,
  transportChecksum,
} from './checksum.js';
export * from './constants.js';
export { PacketParseError } from './errors.js';
export { buildInnerIp, buildPacket } from './build.js';
export type {
  EthSpec,
  IcmpSpec,
  InnerIpOptions,
  Ipv4Spec,
  Ipv6Spec,
  PacketSpec,
  TcpSpec,
  UdpSpec,
} from './build.js';
export {
  decodeIpv4Options,
  decodeTcpOptions,
  encodeIpv4Options,
  encodeTcpOptions,
} from './options.js';
export type { Ipv4Option, TcpOption } from './options.js';
export { decodeTcpFlags, tcpFlagsByte } from './tcp-flags.js';
export type { TcpFlags } from './tcp-flags.js';
export { parsePacket } from './parse.js';
export type {
  Ipv6ExtHeader,
  ParsedEth,
  ParsedIcmp,
  ParsedIpv4,
  ParsedIpv6,
  ParsedPacket,
  ParsedTcp,
  ParsedUdp,
  ParseOptions,
  PartialL4,
} from './parse.js';
export { checksumErrors } from './verify.js';
export type { VerifyOptions } from './verify.js';
