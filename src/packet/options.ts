// Encoding and decoding of IPv4 and TCP options.
//
// Both use the same TLV layout in which kind 0 (end of list) and kind 1 (no-op) are single
// bytes. Encoders pad to a 4-byte boundary with zero bytes, i.e. end-of-list, which is what
// the header length fields require; decoders stop at the first end-of-list and report it.

import { PacketParseError, checkUint } from './errors.js';

/** An IPv4 option; `data` excludes the type and length bytes (empty for types 0 and 1). */
export interface Ipv4Option {
  type: number;
  data: Buffer;
}

export type TcpOption =
  | { kind: 'eol' }
  | { kind: 'nop' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sackPermitted' }
  | { kind: 'sack'; blocks: Array<[left: number, right: number]> }
  | { kind: 'timestamp'; value: number; echo: number }
  | { kind: 'raw'; type: number; data: Buffer };

const MAX_OPTIONS_LENGTH = 40;

export function padOptions(raw: Uint8Array, layer: string): Buffer {
  const padded = Buffer.alloc(Math.ceil(raw.length / 4) * 4);
  Buffer.from(raw).copy(padded);
  if (padded.length > MAX_OPTIONS_LENGTH) {
    throw new Error(`${layer}.options: ${padded.length} bytes exceed the maximum of 40`);
  }
  return padded;
}

function tlv(type: number, data: Uint8Array, layer: string): Buffer {
  checkUint(`${layer}.options.type`, type, 8);
  if (data.length > 253) throw new Error(`${layer}.options: option ${type} data too long`);
  return Buffer.concat([Buffer.from([type, data.length + 2]), data]);
}

export function encodeIpv4Options(options: Uint8Array | readonly Ipv4Option[]): Buffer {
  if (options instanceof Uint8Array) return padOptions(options, 'ipv4');
  const parts = options.map((o) =>
    o.type === 0 || o.type === 1 ? Buffer.from([o.type]) : tlv(o.type, o.data, 'ipv4'),
  );
  return padOptions(Buffer.concat(parts), 'ipv4');
}

export function encodeTcpOptions(options: Uint8Array | readonly TcpOption[]): Buffer {
  if (options instanceof Uint8Array) return padOptions(options, 'tcp');
  const parts = options.map((o): Buffer => {
    switch (o.kind) {
      case 'eol':
        return Buffer.from([0]);
      case 'nop':
        return Buffer.from([1]);
      case 'mss': {
        const b = Buffer.from([2, 4, 0, 0]);
        b.writeUInt16BE(checkUint('tcp.options.mss', o.value, 16), 2);
        return b;
      }
      case 'wscale':
        return Buffer.from([3, 3, checkUint('tcp.options.wscale', o.shift, 8)]);
      case 'sackPermitted':
        return Buffer.from([4, 2]);
      case 'sack': {
        const b = Buffer.alloc(2 + 8 * o.blocks.length);
        b[0] = 5;
        b[1] = b.length;
        o.blocks.forEach(([l, r], i) => {
          b.writeUInt32BE(checkUint('tcp.options.sack', l, 32), 2 + 8 * i);
          b.writeUInt32BE(checkUint('tcp.options.sack', r, 32), 6 + 8 * i);
        });
        return b;
      }
      case 'timestamp': {
        const b = Buffer.from([8, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.writeUInt32BE(checkUint('tcp.options.timestamp', o.value, 32), 2);
        b.writeUInt32BE(checkUint('tcp.options.timestamp', o.echo, 32), 6);
        return b;
      }
      case 'raw':
        return tlv(o.type, o.data, 'tcp');
    }
  });
  return padOptions(Buffer.concat(parts), 'tcp');
}

interface RawOption {
  type: number;
  data: Buffer;
}

/** Splits an options area into single-byte and TLV options, stopping after end-of-list. */
function splitOptions(raw: Buffer, layer: string): RawOption[] {
  const out: RawOption[] = [];
  let i = 0;
  while (i < raw.length) {
    const type = raw.readUInt8(i);
    if (type === 0 || type === 1) {
      out.push({ type, data: Buffer.alloc(0) });
      i++;
      if (type === 0) break;
      continue;
    }
    if (i + 1 >= raw.length) {
      throw new PacketParseError(layer, 'options', `option ${type} at byte ${i} has no length`);
    }
    const len = raw.readUInt8(i + 1);
    if (len < 2 || i + len > raw.length) {
      throw new PacketParseError(
        layer,
        'options',
        `option ${type} at byte ${i} has length ${len}, ${raw.length - i} bytes left`,
      );
    }
    out.push({ type, data: Buffer.from(raw.subarray(i + 2, i + len)) });
    i += len;
  }
  return out;
}

export function decodeIpv4Options(raw: Buffer): Ipv4Option[] {
  return splitOptions(raw, 'ipv4');
}

export function decodeTcpOptions(raw: Buffer): TcpOption[] {
  return splitOptions(raw, 'tcp').map(({ type, data }): TcpOption => {
    // A known kind with an unexpected length is reported raw rather than rejected, so tests
    // can still look at deliberately odd options.
    switch (true) {
      case type === 0:
        return { kind: 'eol' };
      case type === 1:
        return { kind: 'nop' };
      case type === 2 && data.length === 2:
        return { kind: 'mss', value: data.readUInt16BE(0) };
      case type === 3 && data.length === 1:
        return { kind: 'wscale', shift: data.readUInt8(0) };
      case type === 4 && data.length === 0:
        return { kind: 'sackPermitted' };
      case type === 5 && data.length % 8 === 0: {
        const blocks: Array<[number, number]> = [];
        for (let j = 0; j < data.length; j += 8) {
          blocks.push([data.readUInt32BE(j), data.readUInt32BE(j + 4)]);
        }
        return { kind: 'sack', blocks };
      }
      case type === 8 && data.length === 8:
        return { kind: 'timestamp', value: data.readUInt32BE(0), echo: data.readUInt32BE(4) };
      default:
        return { kind: 'raw', type, data };
    }
  });
}
