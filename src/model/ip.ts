/**
 * IPv4 arithmetic for the address plan: addresses as unsigned 32-bit numbers, CIDRs as
 * network + prefix. Parsers return undefined on bad input (validation reports it); the
 * allocators only see text the validator accepted.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number (host bits cleared). */
  network: number;
  prefix: number;
}

const DOTTED_QUAD =
  /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/** 198.18.0.1 -> 3323068417; undefined for anything but a canonical dotted quad. */
export function parseIPv4(text: string): number | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (!m) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export const isIPv4 = (text: string): boolean => parseIPv4(text) !== undefined;

/** '198.18.16.0/20' -> { network, prefix }; undefined when malformed or host bits are set. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9][0-9]?)$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  if ((address & ~maskOf(prefix)) >>> 0 !== 0) return undefined;
  return { network: address, prefix };
}

/** Like parseCidr but throws: for address plans the caller is responsible for. */
export function mustParseCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`invalid IPv4 CIDR ${JSON.stringify(text)}`);
  return cidr;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.network)}/${cidr.prefix}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export const cidrSize = (cidr: Cidr): number => 2 ** (32 - cidr.prefix);
export const broadcastOf = (cidr: Cidr): number => cidr.network + cidrSize(cidr) - 1;

export function cidrContains(cidr: Cidr, address: number): boolean {
  return address >= cidr.network && address <= broadcastOf(cidr);
}

/** Whether inner lies entirely inside outer. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.network);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network) || cidrContains(b, a.network);
}

/** The index-th subnet of the given prefix inside base, e.g. the 2nd /24 of 198.18.16.0/20. */
export function nthSubnet(base: Cidr, prefix: number, index: number): Cidr | undefined {
  if (prefix < base.prefix || prefix > 32 || index < 0) return undefined;
  const count = 2 ** (prefix - base.prefix);
  if (index >= count) return undefined;
  return { network: base.network + index * 2 ** (32 - prefix), prefix };
}
