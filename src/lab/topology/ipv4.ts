/** IPv4 address and CIDR arithmetic for the lab's address plan (pure). */
import { LabError } from './errors.js';

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseIPv4(text: string): number {
  const parts = text.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) {
    throw new LabError(`not an IPv4 address: '${text}'`);
  }
  return bytes.reduce((acc, b) => acc * 256 + b, 0);
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function parseCidr(text: string): Cidr {
  const [addr, len, ...rest] = text.split('/');
  const prefix = Number(len);
  if (addr === undefined || rest.length > 0 || !/^\d{1,2}$/.test(len ?? '') || prefix > 32) {
    throw new LabError(`not an IPv4 CIDR: '${text}'`);
  }
  const size = 2 ** (32 - prefix);
  return { base: Math.floor(parseIPv4(addr) / size) * size, prefix };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  const value = parseIPv4(ip);
  return value >= base && value < base + 2 ** (32 - prefix);
}

/** The address `offset` hosts into the CIDR, e.g. ('198.18.0.0/24', 10) -> '198.18.0.10'. */
export function cidrHost(cidr: string, offset: number): string {
  const { base, prefix } = parseCidr(cidr);
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** (32 - prefix)) {
    throw new LabError(`offset ${offset} is outside ${cidr}`);
  }
  return formatIPv4(base + offset);
}
