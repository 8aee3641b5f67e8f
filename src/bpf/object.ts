/**
 * BPF objects: a spec (what an object file declares and which codecs describe its maps) is
 * opened, checked against its BTF, configured (.rodata, max_entries, pins) and loaded into a
 * live object whose maps are typed.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import type { Codec } from './codec.js';
import { isStruct } from './codec.js';
import { checkStructCodec, describeType, isStructKind, readDatasec } from './btf.js';
import { BpfError, SluiceError, errnoName } from './errors.js';
import { mapInfoByFd } from './info.js';
import type { Ptr } from './libbpf.js';
import { libbpf } from './libbpf.js';
import { tail, withLibbpfLog } from './log.js';
import { BpfMap, MapType, isPerCpuType, perCpu } from './map.js';
import { RingBufferMap } from './ringbuf.js';

/** Where `make -C bpf` puts compiled objects. */
export const BPF_OUTPUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../bpf/.output');

export interface KeyValueMapSpec {
  key: Codec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- variance: any codec fits
  value: Codec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The map is per-CPU: values are read and written as one element per possible CPU. */
  perCpu?: boolean;
  /** Pinned under LoadOptions.pinRoot (default true when a pin root is given). */
  pin?: boolean;
  /**
   * The map only counts (statistics): a pin of another shape, left by a sluice whose map had
   * more slots, is replaced instead of failing the load (libbpf refuses to adopt it), and its
   * counts start again from 0. Maps holding state (flows, services) never are.
   */
  counters?: boolean;
}
export interface RingBufferMapSpec {
  ringbuf: Codec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
export type MapSpec = KeyValueMapSpec | RingBufferMapSpec;

export interface ObjectSpec<M extends Record<string, MapSpec> = Record<string, MapSpec>> {
  /** File name under bpf/.output, e.g. 'packet_stats.bpf.o', or an absolute path. */
  file: string;
  maps: M;
  programs: readonly string[];
  /** Load-time constants (.rodata globals) the loader may set, by variable name. */
  rodata?: Record<string, Codec<number> | Codec<bigint>>;
}

type LiveMap<S> = S extends RingBufferMapSpec
  ? RingBufferMap<S['ringbuf'] extends Codec<infer E> ? E : never>
  : S extends { key: Codec<infer K>; value: Codec<infer V>; perCpu: true }
    ? BpfMap<K, V[]>
    : S extends { key: Codec<infer K>; value: Codec<infer V> }
      ? BpfMap<K, V>
      : never;
export type LiveMaps<M> = { [N in keyof M]: LiveMap<M[N]> };

export interface LoadOptions {
  /** A bpffs directory: maps are pinned here, and maps already pinned here are adopted. */
  pinRoot?: string;
  /** Overrides of max_entries by map name (from config). */
  maxEntries?: Record<string, number>;
  /**
   * Called for each counters map (MapSpec.counters) whose pin was replaced because its shape
   * changed, with what changed: the caller logs it.
   */
  onPinReplaced?: (map: string, change: string) => void;
  /** Values of the spec's rodata variables. */
  rodata?: Record<string, number | bigint>;
}

/** enum bpf_prog_type / bpf_attach_type values the attach code needs. */
export const ProgType = {
  SCHED_CLS: 3,
  XDP: 6,
  CGROUP_SKB: 8,
  CGROUP_SOCK: 9,
  SOCK_OPS: 13,
  SK_MSG: 16,
  CGROUP_SOCK_ADDR: 18,
} as const;

export interface BpfProgram {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly expectedAttachType: number;
  /** The libbpf handle, for attach calls that take a program. */
  readonly handle: Ptr;
}

export class BpfObject<M extends Record<string, MapSpec>> {
  readonly name: string;
  readonly maps: LiveMaps<M>;
  private readonly programs: Map<string, BpfProgram>;
  private handle: Ptr;

  constructor(name: string, handle: Ptr, maps: LiveMaps<M>, programs: Map<string, BpfProgram>) {
    this.name = name;
    this.handle = handle;
    this.maps = maps;
    this.programs = programs;
  }

  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (!p) throw new SluiceError('PROGRAM_NOT_FOUND', `object ${this.name} has no program '${name}'`);
    return p;
  }

  /** Closes the object's fds. Pinned maps, and attachments that hold their own reference, stay. */
  close(): void {
    if (this.handle) libbpf.object_close(this.handle);
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function objectPath(file: string): string {
  return file.startsWith('/') ? file : join(BPF_OUTPUT_DIR, file);
}

function mapsOf(obj: Ptr): Map<string, Ptr> {
  const out = new Map<string, Ptr>();
  for (let m = libbpf.object_next_map(obj, null) as Ptr; m; m = libbpf.object_next_map(obj, m) as Ptr) {
    out.set(libbpf.map_name(m) as string, m);
  }
  return out;
}

function programsOf(obj: Ptr): Map<string, Ptr> {
  const out = new Map<string, Ptr>();
  for (let p = libbpf.object_next_program(obj, null) as Ptr; p; p = libbpf.object_next_program(obj, p) as Ptr) {
    out.set(libbpf.program_name(p) as string, p);
  }
  return out;
}

/** Checks every codec of the spec against the object's BTF and map definitions. */
function checkSpec(spec: ObjectSpec, obj: Ptr, maps: Map<string, Ptr>): void {
  const btf = libbpf.object_btf(obj) as Ptr;
  if (!btf) throw new SluiceError('BTF_MISSING', `${spec.file}: object has no BTF (build with clang -g)`);
  for (const [name, ms] of Object.entries(spec.maps)) {
    const m = maps.get(name);
    if (!m) throw new SluiceError('MAP_NOT_FOUND', `${spec.file}: no map named '${name}'`);
    if ('ringbuf' in ms) {
      if (isStruct(ms.ringbuf)) checkStructCodec(btf, ms.ringbuf, `map ${name} event`);
      continue;
    }
    const type = libbpf.map_type(m) as number;
    if (Boolean(ms.perCpu) !== isPerCpuType(type)) {
      throw new SluiceError(
        'BTF_MISMATCH',
        `map ${name}: spec says perCpu=${Boolean(ms.perCpu)} but the map type is ${type}`,
      );
    }
    for (const [part, codec, typeId, size] of [
      ['key', ms.key, libbpf.map_btf_key_type_id(m), libbpf.map_key_size(m)],
      ['value', ms.value, libbpf.map_btf_value_type_id(m), libbpf.map_value_size(m)],
    ] as [string, Codec<unknown>, number, number][]) {
      const where = `map ${name} ${part}`;
      if (size !== codec.size) {
        throw new SluiceError('BTF_MISMATCH', `${where}: ${size} bytes in the object, ${codec.size} in the codec ${codec.name}`);
      }
      if (!typeId) continue; // maps declared without BTF types (map-in-map values, sockhash)
      const t = describeType(btf, typeId);
      if (isStruct(codec)) {
        if (!isStructKind(t.kind) || t.name !== codec.name) {
          throw new SluiceError('BTF_MISMATCH', `${where}: object has type '${t.name}', codec is struct ${codec.name}`);
        }
        checkStructCodec(btf, codec, where);
      }
    }
  }
  if (spec.rodata) {
    const vars = readDatasec(btf, '.rodata');
    for (const [name, codec] of Object.entries(spec.rodata)) {
      const v = vars.get(name);
      if (!v) throw new SluiceError('BTF_MISMATCH', `${spec.file}: no .rodata variable '${name}'`);
      if (v.size !== codec.size) {
        throw new SluiceError('BTF_MISMATCH', `.rodata ${name}: ${v.size} bytes in BTF, ${codec.size} in the codec`);
      }
    }
  }
}

function setRodata(spec: ObjectSpec, obj: Ptr, maps: Map<string, Ptr>, values: Record<string, number | bigint>): void {
  const btf = libbpf.object_btf(obj) as Ptr;
  const vars = readDatasec(btf, '.rodata');
  const rodataMap = [...maps.entries()].find(([n]) => n.endsWith('.rodata'))?.[1];
  if (!rodataMap) throw new SluiceError('BTF_MISMATCH', `${spec.file}: object has no .rodata section`);
  const size = [0];
  const ptr = libbpf.map_initial_value(rodataMap, size) as Ptr;
  const image = Buffer.from(koffi.view(ptr, size[0] ?? 0));
  for (const [name, value] of Object.entries(values)) {
    const codec = spec.rodata?.[name];
    const v = vars.get(name);
    if (!codec || !v) throw new SluiceError('BTF_MISMATCH', `${spec.file}: rodata '${name}' is not declared in the spec`);
    (codec as Codec<number | bigint>).encode(value, image, v.offset);
  }
  const ret = libbpf.map_set_initial_value(rodataMap, image, image.length) as number;
  if (ret < 0) throw new BpfError('bpf_map__set_initial_value', `${spec.file} .rodata`, ret);
}

/**
 * Opens, checks, configures and loads an object. On any failure nothing stays behind: the
 * object is closed, maps it pinned are unpinned (libbpf does this on a failed load), and a pin
 * directory it created is removed.
 */
export function loadObject<M extends Record<string, MapSpec>>(spec: ObjectSpec<M>, options: LoadOptions = {}): BpfObject<M> {
  const path = objectPath(spec.file);
  if (!existsSync(path)) {
    throw new SluiceError('BPF_LOAD', `${path} does not exist: build the datapath with 'make -C bpf'`);
  }
  const objName = spec.file.replace(/^.*\//, '').replace(/\.bpf\.o$/, '');
  let createdPinDir = false;
  const setAside: { name: string; path: string; change: string }[] = [];
  return withLibbpfLog((log) => {
    const obj = libbpf.object_open_file(path, { sz: 80 }) as Ptr;
    if (!obj) throw new BpfError('bpf_object__open_file', objName, -koffi.errno(), tail(log, 20));
    try {
      const maps = mapsOf(obj);
      checkSpec(spec, obj, maps);
      for (const [name, n] of Object.entries(options.maxEntries ?? {})) {
        const m = maps.get(name);
        if (!m) throw new SluiceError('MAP_NOT_FOUND', `${objName}: maxEntries names unknown map '${name}'`);
        const ret = libbpf.map_set_max_entries(m, n) as number;
        if (ret < 0) throw new BpfError('bpf_map__set_max_entries', name, ret);
      }
      if (options.rodata) setRodata(spec, obj, maps, options.rodata);
      if (options.pinRoot) {
        if (!existsSync(options.pinRoot)) {
          mkdirSync(options.pinRoot, { recursive: true });
          createdPinDir = true;
        }
        for (const [name, ms] of Object.entries(spec.maps)) {
          if ('ringbuf' in ms || ms.pin === false) continue;
          const path = join(options.pinRoot, name);
          if (ms.counters) {
            const change = pinnedShapeChange(path, maps.get(name) as Ptr); // checkSpec found it
            if (change) {
              // Moved aside, not removed: a failed load puts it back for the running datapath.
              renameSync(path, `${path}${SET_ASIDE}`);
              setAside.push({ name, path, change });
            }
          }
          const ret = libbpf.map_set_pin_path(maps.get(name), path) as number;
          if (ret < 0) throw new BpfError('bpf_map__set_pin_path', name, ret);
        }
      }
      const ret = libbpf.object_load(obj) as number;
      if (ret < 0) {
        throw new SluiceError('BPF_LOAD', `bpf_object__load(${objName}): ${errnoName(ret)}\n${tail(log, 30)}`);
      }
      for (const { name, path, change } of setAside) {
        unlinkSync(`${path}${SET_ASIDE}`);
        options.onPinReplaced?.(name, change);
      }
      return new BpfObject(objName, obj, liveMaps(spec, maps), livePrograms(spec, obj));
    } catch (error) {
      libbpf.object_close(obj);
      for (const { path } of setAside) renameSync(`${path}${SET_ASIDE}`, path);
      if (createdPinDir && options.pinRoot && readdirSync(options.pinRoot).length === 0) rmdirSync(options.pinRoot);
      throw error;
    }
  });
}

/** Suffix of a counters pin moved aside while the object that replaces it loads. */
const SET_ASIDE = '_replaced'; // bpffs refuses names with a dot

/**
 * What differs between the map pinned at path and the object's definition of it, in the terms
 * libbpf compares before adopting a pin (type, key and value size, max_entries, flags), or
 * undefined when it may be adopted (or nothing is pinned there).
 */
function pinnedShapeChange(path: string, map: Ptr): string | undefined {
  if (!existsSync(path)) return undefined;
  const fd = libbpf.obj_get(path) as number;
  if (fd < 0) throw new BpfError('bpf_obj_get', path, fd);
  let pinned;
  try {
    pinned = mapInfoByFd(fd, path);
  } finally {
    closeSync(fd);
  }
  const wanted: [string, number, number][] = [
    ['type', pinned.type, libbpf.map_type(map) as number],
    ['key_size', pinned.keySize, libbpf.map_key_size(map) as number],
    ['value_size', pinned.valueSize, libbpf.map_value_size(map) as number],
    ['max_entries', pinned.maxEntries, libbpf.map_max_entries(map) as number],
    ['map_flags', pinned.flags, libbpf.map_flags(map) as number],
  ];
  const changes = wanted.filter(([, was, is]) => was !== is).map(([what, was, is]) => `${what} ${was} -> ${is}`);
  return changes.length > 0 ? changes.join(', ') : undefined;
}

function liveMaps<M extends Record<string, MapSpec>>(spec: ObjectSpec<M>, maps: Map<string, Ptr>): LiveMaps<M> {
  const live: Record<string, unknown> = {};
  for (const [name, ms] of Object.entries(spec.maps)) {
    const m = maps.get(name);
    const info = {
      name,
      fd: libbpf.map_fd(m) as number,
      type: libbpf.map_type(m) as number,
      keySize: libbpf.map_key_size(m) as number,
      valueSize: libbpf.map_value_size(m) as number,
      maxEntries: libbpf.map_max_entries(m) as number,
    };
    if ('ringbuf' in ms) {
      if (info.type !== MapType.RINGBUF) throw new SluiceError('BTF_MISMATCH', `map ${name} is not a ring buffer`);
      live[name] = new RingBufferMap(name, info.fd, ms.ringbuf);
    } else {
      live[name] = new BpfMap(info, ms.key, ms.perCpu ? perCpu(ms.value) : ms.value);
    }
  }
  return live as LiveMaps<M>;
}

function livePrograms(spec: ObjectSpec, obj: Ptr): Map<string, BpfProgram> {
  const all = programsOf(obj);
  const out = new Map<string, BpfProgram>();
  for (const name of spec.programs) {
    const handle = all.get(name);
    if (!handle) throw new SluiceError('PROGRAM_NOT_FOUND', `${spec.file}: no program named '${name}'`);
    out.set(name, {
      name,
      handle,
      fd: libbpf.program_fd(handle) as number,
      type: libbpf.program_type(handle) as number,
      expectedAttachType: libbpf.program_expected_attach_type(handle) as number,
    });
  }
  return out;
}
