// TCP flag encoding shared by the builder and the parser.

import { checkUint } from './errors.js';

export interface TcpFlags {
  fin?: boolean;
  syn?: boolean;
  rst?: boolean;
  psh?: boolean;
  ack?: boolean;
  urg?: boolean;
  ece?: boolean;
  cwr?: boolean;
}

const TCP_FLAG_BITS: ReadonlyArray<[keyof TcpFlags, string, number]> = [
  ['fin', 'F', 0x01],
  ['syn', 'S', 0x02],
  ['rst', 'R', 0x04],
  ['psh', 'P', 0x08],
  ['ack', 'A', 0x10],
  ['urg', 'U', 0x20],
  ['ece', 'E', 0x40],
  ['cwr', 'C', 0x80],
];

export function tcpFlagsByte(flags: TcpFlags | string | number | undefined): number {
  if (flags === undefined) return 0;
  if (typeof flags === 'number') return checkUint('tcp.flags', flags, 8);
  let byte = 0;
  if (typeof flags === 'string') {
    for (const ch of flags.toUpperCase()) {
      const bit = TCP_FLAG_BITS.find(([, letter]) => letter === ch);
      if (!bit) throw new Error(`tcp.flags: unknown flag letter ${JSON.stringify(ch)}`);
      byte |= bit[2];
    }
    return byte;
  }
  for (const [name, , bit] of TCP_FLAG_BITS) if (flags[name]) byte |= bit;
  return byte;
}

/** Decodes a flags byte into every named flag plus its letters in the order F S R P A U E C. */
export function decodeTcpFlags(byte: number): { flags: Required<TcpFlags>; letters: string } {
  const flags = {} as Required<TcpFlags>;
  let letters = '';
  for (const [name, letter, bit] of TCP_FLAG_BITS) {
    flags[name] = (byte & bit) !== 0;
    if (flags[name]) letters += letter;
  }
  return { flags, letters };
}
