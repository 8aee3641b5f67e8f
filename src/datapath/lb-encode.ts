/**
 * Hand-written bulk encoders of the two load-balancing structs a full pass writes by the 100k
 * (a backend, a slot key: one each per endpoint), for fastEncoder (bpf/map.ts) to use once
 * registerLbEncoders ran.
 *
 * Why: the generic encoder reads each field by a computed name, which costs ~0.5 us a struct
 * until the JIT has warmed up, and a full pass writes each struct once, cold. These read the
 * fields by their names and write at the offsets of the codec's layout (the one checked against
 * BTF), so a layout change moves them along; a field whose codec is not the one expected here
 * stops the import. A value they do not handle (a field missing or out of range, an address that
 * is no dotted quad) goes to codec.encode, which writes it or throws its usual error.
 */
import type { Codec, StructCodec } from '../bpf/codec.js';
import { be16, ipv4, u32, u8 } from '../bpf/codec.js';
import type { Encode } from '../bpf/map.js';
import { registerEncoder, writeDottedQuad } from '../bpf/map.js';
import { Lb4Backend, LbSlotKey } from './lb.js';

/** Makes fastEncoder use these for Lb4Backend and LbSlotKey (idempotent). */
export function registerLbEncoders(): void {
  registerEncoder(Lb4Backend, lb4BackendEncoder(Lb4Backend));
  registerEncoder(LbSlotKey, lbSlotKeyEncoder(LbSlotKey));
}

interface BackendFields {
  address: string;
  port: number;
  proto: number;
  flags: number;
  node_address: string;
}

interface SlotKeyFields {
  service_id: number;
  slot: number;
}

/** The offset of a field, which must have this codec. */
function offsetOf(codec: StructCodec<unknown>, name: string, expected: Codec<unknown>): number {
  const field = codec.fields.find((f) => f.name === name);
  if (field?.codec !== expected) {
    throw new Error(`lb-encode: ${codec.name}.${name} is not a ${expected.name}`);
  }
  return field.offset;
}

/** The byte ranges of a struct that no named field covers: padding, written as zeros. */
function paddingBytes(codec: StructCodec<unknown>, named: readonly string[]): number[] {
  const covered = new Array<boolean>(codec.size).fill(false);
  for (const f of codec.fields) {
    if (named.includes(f.name)) for (let i = 0; i < f.size; i++) covered[f.offset + i] = true;
  }
  const out: number[] = [];
  covered.forEach((c, i) => c || out.push(i));
  return out;
}

const isU8 = (x: unknown): x is number => typeof x === 'number' && (x & 0xff) === x;
const isU16 = (x: unknown): x is number => typeof x === 'number' && (x & 0xffff) === x;
const isU32 = (x: unknown): x is number => typeof x === 'number' && x >>> 0 === x;

/** struct lb4_backend: address, port (network order), proto, flags, node_address, padding. */
export function lb4BackendEncoder<T extends BackendFields>(codec: StructCodec<T>): Encode<T> {
  const fields = ['address', 'port', 'proto', 'flags', 'node_address'];
  const address = offsetOf(codec, 'address', ipv4);
  const port = offsetOf(codec, 'port', be16);
  const proto = offsetOf(codec, 'proto', u8);
  const flags = offsetOf(codec, 'flags', u8);
  const node = offsetOf(codec, 'node_address', ipv4);
  const pads = paddingBytes(codec, fields);
  return (v, b, o) => {
    if (
      !isU16(v.port) ||
      !isU8(v.proto) ||
      !isU8(v.flags) ||
      typeof v.address !== 'string' ||
      typeof v.node_address !== 'string' ||
      !writeDottedQuad(v.address, b, o + address) ||
      !writeDottedQuad(v.node_address, b, o + node)
    ) {
      codec.encode(v, b, o);
      return;
    }
    b[o + port] = v.port >>> 8;
    b[o + port + 1] = v.port & 0xff;
    b[o + proto] = v.proto;
    b[o + flags] = v.flags;
    for (let i = 0; i < pads.length; i++) b[o + (pads[i] as number)] = 0;
  };
}

/** struct lb_slot_key: service_id, slot (host order). */
export function lbSlotKeyEncoder<T extends SlotKeyFields>(codec: StructCodec<T>): Encode<T> {
  const serviceId = offsetOf(codec, 'service_id', u32);
  const slot = offsetOf(codec, 'slot', u32);
  const pads = paddingBytes(codec, ['service_id', 'slot']);
  return (v, b, o) => {
    if (!isU32(v.service_id) || !isU32(v.slot)) {
      codec.encode(v, b, o);
      return;
    }
    b.writeUInt32LE(v.service_id, o + serviceId);
    b.writeUInt32LE(v.slot, o + slot);
    for (let i = 0; i < pads.length; i++) b[o + (pads[i] as number)] = 0;
  };
}
