/**
 * Codecs: the TypeScript description of a C struct, declared once and checked against the
 * object's BTF at load (btf.ts), so a layout change in bpf/include cannot silently corrupt a map.
 *
 * Offsets follow C's natural alignment, exactly as clang lays out the explicit-padding structs
 * in bpf/include; the BTF check is what proves it.
 */
import { SluiceError } from './errors.js';

export interface Codec<T> {
  /** The C type name: the struct's tag, or the scalar's name ('__u32'). */
  readonly name: string;
  readonly size: number;
  readonly align: number;
  encode(value: T, buf: Buffer, offset: number): void;
  decode(buf: Buffer, offset: number): T;
}

export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly codec: Codec<unknown>;
}

export interface StructCodec<T> extends Codec<T> {
  readonly kind: 'struct';
  readonly fields: readonly FieldLayout[];
}

export type Decoded<C> = C extends Codec<infer T> ? T : never;

function scalar<T>(
  name: string,
  size: number,
  encode: (v: T, b: Buffer, o: number) => void,
  decode: (b: Buffer, o: number) => T,
): Codec<T> {
  return { name, size, align: size, encode, decode };
}

export const u8 = scalar<number>(
  '__u8',
  1,
  (v, b, o) => b.writeUInt8(v, o),
  (b, o) => b.readUInt8(o),
);
export const u16 = scalar<number>(
  '__u16',
  2,
  (v, b, o) => b.writeUInt16LE(v, o),
  (b, o) => b.readUInt16LE(o),
);
export const u32 = scalar<number>(
  '__u32',
  4,
  (v, b, o) => b.writeUInt32LE(v, o),
  (b, o) => b.readUInt32LE(o),
);
export const s32 = scalar<number>(
  '__s32',
  4,
  (v, b, o) => b.writeInt32LE(v, o),
  (b, o) => b.readInt32LE(o),
);
// Buffer.writeBigUInt64LE splits the bigint with bigint arithmetic (~100 ns); a store into a
// BigUint64Array is done natively, so writes go through this scratch slot (3x faster).
const u64Scratch = new BigUint64Array(1);
const u64ScratchBytes = new Uint8Array(u64Scratch.buffer);

export const u64 = scalar<bigint>(
  '__u64',
  8,
  (v, b, o) => {
    u64Scratch[0] = v;
    b.set(u64ScratchBytes, o);
  },
  (b, o) => b.readBigUInt64LE(o),
);
/** A network-order 16-bit field (__be16) seen as a host number: ports. */
export const be16 = scalar<number>(
  '__be16',
  2,
  (v, b, o) => b.writeUInt16BE(v, o),
  (b, o) => b.readUInt16BE(o),
);
export const be32 = scalar<number>(
  '__be32',
  4,
  (v, b, o) => b.writeUInt32BE(v, o),
  (b, o) => b.readUInt32BE(o),
);
/** A network-order IPv4 address (__be32) seen as dotted quad. */
export const ipv4 = scalar<string>(
  '__be32',
  4,
  (v, b, o) => {
    const parts = v.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
      throw new SluiceError('CODEC', `invalid IPv4 address '${v}'`);
    }
    b.set(parts, o);
  },
  (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`,
);

/** Fixed-size opaque bytes (a MAC, an IPv6 address, a char array). */
export function bytes(size: number): Codec<Buffer> {
  return {
    name: `u8[${size}]`,
    size,
    align: 1,
    encode: (v, b, o) => {
      if (v.length !== size) throw new SluiceError('CODEC', `expected ${size} bytes, got ${v.length}`);
      v.copy(b, o);
    },
    decode: (b, o) => Buffer.from(b.subarray(o, o + size)),
  };
}

/** Explicit padding: always written as zeros, decoded as undefined. */
export function pad(size: number): Codec<undefined> {
  return {
    name: `pad[${size}]`,
    size,
    align: 1,
    encode: (_v, b, o) => void b.fill(0, o, o + size),
    decode: () => undefined,
  };
}

type Fields = Record<string, Codec<unknown>>;
type StructValue<F extends Fields> = {
  [K in keyof F as Decoded<F[K]> extends undefined ? never : K]: Decoded<F[K]>;
};

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** A C struct: fields in declaration order, laid out with natural alignment. */
export function struct<F extends Fields>(name: string, fields: F): StructCodec<StructValue<F>> {
  const layout: { name: string; offset: number; codec: Codec<unknown> }[] = [];
  let offset = 0;
  let align = 1;
  for (const [fieldName, codec] of Object.entries(fields)) {
    offset = alignUp(offset, codec.align);
    layout.push({ name: fieldName, offset, codec });
    offset += codec.size;
    align = Math.max(align, codec.align);
  }
  const size = alignUp(offset, align);
  return {
    kind: 'struct',
    name,
    size,
    align,
    fields: layout.map(({ name: n, offset: o, codec }) => ({
      name: n,
      offset: o,
      size: codec.size,
      codec,
    })),
    encode(value, buf, base) {
      const record = value as Record<string, unknown>;
      for (const f of layout) {
        const v = record[f.name];
        if (v === undefined && !f.codec.name.startsWith('pad[')) {
          throw new SluiceError('CODEC', `struct ${name}: field '${f.name}' is missing`);
        }
        f.codec.encode(v, buf, base + f.offset);
      }
    },
    decode(buf, base) {
      const out: Record<string, unknown> = {};
      for (const f of layout) {
        const v = f.codec.decode(buf, base + f.offset);
        if (v !== undefined) out[f.name] = v;
      }
      return out as StructValue<F>;
    },
  };
}

export function isStruct(codec: Codec<unknown>): codec is StructCodec<unknown> {
  return (codec as Partial<StructCodec<unknown>>).kind === 'struct';
}

/** Encodes one value into a fresh buffer of exactly the codec's size. */
export function encodeOne<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.alloc(codec.size);
  codec.encode(value, buf, 0);
  return buf;
}
