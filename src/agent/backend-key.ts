/**
 * A backend's identity (address, port, protocol) as the plan, the diff and its index key their
 * maps by it (pure).
 *
 * It is a number, (address * 2^16 + port) * 2^5 + protocol: exact in a double (53 bits), hashed
 * from its value. The `address:port/PROTO` string it replaces was built, flattened and hashed for
 * each of the 100k backends of a 10k-service plan, and the lookups in a map of them measured
 * ~500 ns a backend. Anything that does not fit (an address that is not a canonical dotted quad,
 * a port that is no u16, a protocol from 32 up: never TCP or UDP, only odd map contents) keeps
 * its name as its key, so two different backends never share one.
 *
 * Order: by name, as the string keys were ordered (slot order of a first pass, id order of new
 * backends); compareBackendKeys says it.
 */
import { IPPROTO } from '../datapath/lb.js';

export type BackendKey = number | string;

const PROTO_NAMES: Record<number, string> = { [IPPROTO.TCP]: 'TCP', [IPPROTO.UDP]: 'UDP' };
export const protoName = (proto: number): string => PROTO_NAMES[proto] ?? `proto${proto}`;

/** `address:port/PROTO`, the name of a backend (logs, Maglev members, ordering). */
export const backendNameOf = (address: string, port: number, proto: number): string =>
  `${address}:${port}/${protoName(proto)}`;

export function backendKey(address: string, port: number, proto: number): BackendKey {
  const a = canonicalIPv4(address);
  if (a < 0 || (port & 0xffff) !== port || (proto & 31) !== proto) {
    return backendNameOf(address, port, proto);
  }
  return (a * 65536 + port) * 32 + proto;
}

/** The name of the backend a key stands for. */
export function backendName(key: BackendKey): string {
  if (typeof key === 'string') return key;
  const proto = key % 32;
  const rest = (key - proto) / 32;
  const port = rest % 65536;
  const a = (rest - port) / 65536;
  return backendNameOf(
    `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`,
    port,
    proto,
  );
}

/** The order of the backends' names. */
export function compareBackendKeys(a: BackendKey, b: BackendKey): number {
  const x = backendName(a);
  const y = backendName(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A dotted quad as a u32, or -1 when it is not canonical (four decimal octets 0-255 without
 * leading zeros): only then does the number stand for exactly one string.
 */
function canonicalIPv4(s: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // a leading zero
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}
