// Address parsing and formatting for MAC, IPv4 and IPv6.
//
// Every parser returns a fresh Buffer in network byte order and throws on anything it cannot
// read unambiguously, so that a typo in a test fixture fails loudly instead of producing a
// packet with a silently wrong address.

/** An address given either as text or as raw network-order bytes. */
export type AddrInput = string | Uint8Array;

export function parseMac(text: string): Buffer {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new Error(`invalid MAC address ${JSON.stringify(text)}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  expectLength(bytes, 6, 'MAC');
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function parseIPv4(text: string): Buffer {
  const parts = text.split('.');
  // Leading zeros are rejected because some stacks read them as octal; a fixture that relies
  // on either reading is a bug waiting to happen.
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p))) {
    throw new Error(`invalid IPv4 address ${JSON.stringify(text)}`);
  }
  const bytes = parts.map((p) => Number(p));
  if (bytes.some((b) => b > 255)) {
    throw new Error(`invalid IPv4 address ${JSON.stringify(text)}`);
  }
  return Buffer.from(bytes);
}

export function formatIPv4(bytes: Uint8Array): string {
  expectLength(bytes, 4, 'IPv4');
  return Array.from(bytes).join('.');
}

export function parseIPv6(text: string): Buffer {
  const fail = (): never => {
    throw new Error(`invalid IPv6 address ${JSON.stringify(text)}`);
  };
  // A trailing dotted quad (e.g. ::ffff:198.18.0.1) stands for the last two groups.
  let head = text;
  let tailGroups: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    if (lastColon < 0) fail();
    let v4: Buffer;
    try {
      v4 = parseIPv4(text.slice(lastColon + 1));
    } catch {
      return fail();
    }
    tailGroups = [v4.readUInt16BE(0), v4.readUInt16BE(2)];
    // Drop the colon before the quad unless it is half of a "::".
    head = text.slice(0, text.endsWith('::', lastColon + 1) ? lastColon + 1 : lastColon);
  }
  const readGroups = (s: string): number[] => {
    if (s === '') return [];
    return s.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : fail()));
  };
  let groups: number[];
  const dbl = head.indexOf('::');
  if (dbl >= 0) {
    if (head.indexOf('::', dbl + 1) >= 0) fail();
    const left = readGroups(head.slice(0, dbl));
    const right = readGroups(head.slice(dbl + 2));
    const missing = 8 - left.length - right.length - tailGroups.length;
    // RFC 4291 lets "::" stand for one or more zero groups, never for none.
    if (missing < 1) fail();
    groups = [...left, ...new Array<number>(missing).fill(0), ...right, ...tailGroups];
  } else {
    groups = [...readGroups(head), ...tailGroups];
    if (groups.length !== 8) fail();
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Formats per RFC 5952: lowercase, no leading zeros, longest zero run (>= 2 groups) as "::". */
export function formatIPv6(bytes: Uint8Array): string {
  expectLength(bytes, 16, 'IPv6');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
  const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(i * 2));
  // RFC 5952 section 5 recommends the mixed notation for IPv4-mapped addresses.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(buf.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    // Strictly greater keeps the first of equally long runs, as RFC 5952 4.2.3 requires.
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Parses an IPv4 or IPv6 address, telling them apart by the presence of a colon. */
export function parseIp(text: string): Buffer {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

/** Formats 4 or 16 bytes as IPv4 or IPv6 text. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIPv4(bytes);
  if (bytes.length === 16) return formatIPv6(bytes);
  throw new Error(`IP address must be 4 or 16 bytes, got ${bytes.length}`);
}

/** Normalises an address given as text or bytes to a Buffer of the expected family. */
export function toAddrBytes(input: AddrInput, family: 'mac' | 'ipv4' | 'ipv6'): Buffer {
  if (typeof input === 'string') {
    if (family === 'mac') return parseMac(input);
    return family === 'ipv4' ? parseIPv4(input) : parseIPv6(input);
  }
  const len = family === 'mac' ? 6 : family === 'ipv4' ? 4 : 16;
  expectLength(input, len, family);
  return Buffer.from(input);
}

function expectLength(bytes: Uint8Array, len: number, what: string): void {
  if (bytes.length !== len) {
    throw new Error(`${what} address must be ${len} bytes, got ${bytes.length}`);
  }
}
