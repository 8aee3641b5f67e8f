/**
 * The lab's address-plan helpers over the model's IPv4 arithmetic (src/model/ip.ts): string in,
 * string out, and a LabError naming the bad text instead of undefined.
 */
import type { Cidr } from '../../model/ip.js';
import {
  cidrContains as contains,
  formatIPv4,
  parseCidr as parse,
  parseIPv4,
} from '../../model/ip.js';
import { LabError } from './errors.js';

export function parseCidr(text: string): Cidr {
  const cidr = parse(text);
  if (!cidr) throw new LabError(`not an IPv4 CIDR: '${text}'`);
  return cidr;
}

function address(text: string): number {
  const value = parseIPv4(text);
  if (value === undefined) throw new LabError(`not an IPv4 address: '${text}'`);
  return value;
}

export function cidrContains(cidr: string, ip: string): boolean {
  return contains(parseCidr(cidr), address(ip));
}

/** The address `offset` hosts into the CIDR, e.g. ('198.18.0.0/24', 10) -> '198.18.0.10'. */
export function cidrHost(cidr: string, offset: number): string {
  const { network, prefix } = parseCidr(cidr);
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** (32 - prefix)) {
    throw new LabError(`offset ${offset} is outside ${cidr}`);
  }
  return formatIPv4(network + offset);
}
