/**
 * Reads type layouts out of an object's BTF (through libbpf's btf__* API) and checks codecs
 * against them: total size, then every field's offset and size, by name.
 */
import koffi from 'koffi';
import type { Codec } from './codec.js';
import { isStruct } from './codec.js';
import { SluiceError } from './errors.js';
import type { Ptr } from './libbpf.js';
import { libbpf } from './libbpf.js';

// include/uapi/linux/btf.h
const BTF_KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, TYPEDEF: 8, VAR: 14, DATASEC: 15 };
const BTF_TYPE_SIZE = 12;
const BTF_MEMBER_SIZE = 12;

export interface BtfMember {
  name: string;
  offset: number;
  size: number;
  /** Set for bitfields: the width in bits. */
  bits?: number;
}

export interface BtfStruct {
  name: string;
  size: number;
  members: BtfMember[];
}

interface RawType {
  nameOff: number;
  kind: number;
  kindFlag: boolean;
  vlen: number;
  sizeOrType: number;
  body: Buffer;
}

function rawType(btf: Ptr, id: number): RawType {
  const ptr = libbpf.btf_type_by_id(btf, id) as Ptr;
  if (!ptr) throw new SluiceError('BTF_MISSING', `BTF has no type with id ${id}`);
  const head = Buffer.from(koffi.view(ptr, BTF_TYPE_SIZE));
  const info = head.readUInt32LE(4);
  const vlen = info & 0xffff;
  const kind = (info >>> 24) & 0x1f;
  // Struct members and datasec entries are both 12 bytes each.
  const body = vlen ? Buffer.from(koffi.view(ptr, BTF_TYPE_SIZE + vlen * 12)).subarray(12) : head.subarray(0, 0);
  return {
    nameOff: head.readUInt32LE(0),
    kind,
    kindFlag: info >>> 31 === 1,
    vlen,
    sizeOrType: head.readUInt32LE(8),
    body,
  };
}

function nameOf(btf: Ptr, off: number): string {
  return (libbpf.btf_name_by_offset(btf, off) as string | null) ?? '';
}

/** The struct's layout, or undefined when the BTF has no struct of that name. */
export function readStruct(btf: Ptr, name: string): BtfStruct | undefined {
  const id = libbpf.btf_find_by_name_kind(btf, name, BTF_KIND.STRUCT) as number;
  if (id < 0) return undefined;
  return readStructById(btf, id);
}

function readStructById(btf: Ptr, id: number): BtfStruct {
  const t = rawType(btf, id);
  const members: BtfMember[] = [];
  for (let i = 0; i < t.vlen; i++) {
    const at = i * BTF_MEMBER_SIZE;
    const memberType = t.body.readUInt32LE(at + 4);
    const rawOffset = t.body.readUInt32LE(at + 8);
    const bits = t.kindFlag ? rawOffset >>> 24 : 0;
    const bitOffset = t.kindFlag ? rawOffset & 0xffffff : rawOffset;
    const size = Number(libbpf.btf_resolve_size(btf, memberType));
    members.push({
      name: nameOf(btf, t.body.readUInt32LE(at)),
      offset: Math.floor(bitOffset / 8),
      size,
      ...(bits ? { bits } : {}),
    });
  }
  return { name: nameOf(btf, t.nameOff), size: t.sizeOrType, members };
}

/** Name and size of a type by id, following typedefs (for map key/value checks). */
export function describeType(btf: Ptr, id: number): { name: string; kind: number; size: number } {
  let t = rawType(btf, id);
  let name = nameOf(btf, t.nameOff);
  while (t.kind === BTF_KIND.TYPEDEF) {
    t = rawType(btf, t.sizeOrType);
    if (t.kind === BTF_KIND.STRUCT) name = nameOf(btf, t.nameOff);
  }
  return { name, kind: t.kind, size: Number(libbpf.btf_resolve_size(btf, id)) };
}

export function isStructKind(kind: number): boolean {
  return kind === BTF_KIND.STRUCT || kind === BTF_KIND.UNION;
}

/** Variables of a data section (.rodata, .bss, .data): name -> offset and size. */
export function readDatasec(btf: Ptr, section: string): Map<string, { offset: number; size: number }> {
  const vars = new Map<string, { offset: number; size: number }>();
  const id = libbpf.btf_find_by_name_kind(btf, section, BTF_KIND.DATASEC) as number;
  if (id < 0) return vars;
  const t = rawType(btf, id);
  for (let i = 0; i < t.vlen; i++) {
    const at = i * 12;
    const v = rawType(btf, t.body.readUInt32LE(at));
    if (v.kind !== BTF_KIND.VAR) continue;
    vars.set(nameOf(btf, v.nameOff), { offset: t.body.readUInt32LE(at + 4), size: t.body.readUInt32LE(at + 8) });
  }
  return vars;
}

function mismatch(where: string, detail: string): SluiceError {
  return new SluiceError('BTF_MISMATCH', `${where}: ${detail}`);
}

/**
 * Checks a struct codec against the BTF struct of the same name: total size, then each field
 * by name (offset and size), and that neither side has a field the other lacks.
 * `where` names the user of the codec, e.g. "map flow_table key".
 */
export function checkStructCodec(btf: Ptr, codec: Codec<unknown>, where: string): void {
  if (!isStruct(codec)) return;
  const s = readStruct(btf, codec.name);
  if (!s) throw mismatch(where, `struct ${codec.name} is not in the object's BTF`);
  const subject = `struct ${codec.name}`;
  if (s.size !== codec.size) {
    throw mismatch(where, `${subject} is ${s.size} bytes in BTF, ${codec.size} in the codec`);
  }
  const inBtf = new Map(s.members.map((m) => [m.name, m]));
  for (const f of codec.fields) {
    const m = inBtf.get(f.name);
    if (!m) throw mismatch(where, `${subject} field '${f.name}' is not in BTF`);
    if (m.bits) throw mismatch(where, `${subject} field '${f.name}' is a bitfield; codecs need whole bytes`);
    if (m.offset !== f.offset) {
      throw mismatch(where, `${subject} field '${f.name}' is at offset ${m.offset} in BTF, ${f.offset} in the codec`);
    }
    if (m.size !== f.size) {
      throw mismatch(where, `${subject} field '${f.name}' is ${m.size} bytes in BTF, ${f.size} in the codec`);
    }
    // A nested struct is checked as a whole too, under its own name.
    if (isStruct(f.codec)) checkStructCodec(btf, f.codec, `${where} field '${f.name}'`);
    inBtf.delete(f.name);
  }
  const missing = [...inBtf.keys()].filter((n) => n !== '');
  if (missing.length) throw mismatch(where, `${subject} field '${missing[0]}' is in BTF but not in the codec`);
}
