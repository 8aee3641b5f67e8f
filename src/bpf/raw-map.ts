/**
 * Maps created and written outside an object: inner maps of a map-in-map made from user space,
 * an existing map opened by id, and BPF_F_MMAPABLE arrays written as memory. The Maglev tables
 * (src/datapath/maglev.ts) use all three; the FFI stays here, in the binding layer.
 */
import koffi from 'koffi';
import { BpfError } from './errors.js';

const lib = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');
const bpfMapCreate = lib.func(
  'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
);
const bpfMapGetFdById = lib.func('int bpf_map_get_fd_by_id(uint32_t id)');
const mmap = libc.func(
  'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
);
const munmap = libc.func('int munmap(void *addr, size_t length)');

export const BPF_F_MMAPABLE = 1 << 10;
export const BPF_F_INNER_MAP = 1 << 12;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const PAGE = 4096;

export interface RawMapOptions {
  type: number;
  /** At most 15 characters: the kernel truncates longer names. */
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** Names the map in errors, e.g. `lb_maglev[7]`. */
  what: string;
}

/** struct bpf_map_create_opts (libbpf 1.1): sz, then map_flags at offset 28; 48 bytes. */
function createOpts(flags: number): Buffer {
  const opts = Buffer.alloc(48);
  opts.writeBigUInt64LE(48n, 0);
  opts.writeUInt32LE(flags, 28);
  return opts;
}

/** bpf_map_create: a new map's fd, owned by the caller. */
export function createMap(o: RawMapOptions): number {
  const fd = bpfMapCreate(
    o.type,
    o.name,
    o.keySize,
    o.valueSize,
    o.maxEntries,
    createOpts(o.flags ?? 0),
  ) as number;
  if (fd < 0) throw new BpfError('bpf_map_create', o.what, fd);
  return fd;
}

/** An fd for the map with this id, or undefined when it is gone (ENOENT). */
export function mapFdById(id: number, what: string): number | undefined {
  const fd = bpfMapGetFdById(id) as number;
  if (fd === -2) return undefined;
  if (fd < 0) throw new BpfError('bpf_map_get_fd_by_id', what, fd);
  return fd;
}

/**
 * Runs fn over the first `count` u32s of an mmap-able array's values, mapped read-write and
 * unmapped afterwards. A 32-bit aligned store is atomic for a program reading the same slot.
 */
export function withMappedU32<T>(
  fd: number,
  valueBytes: number,
  count: number,
  what: string,
  fn: (values: Uint32Array) => T,
): T {
  const length = Math.ceil(valueBytes / PAGE) * PAGE;
  const ptr = mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) as unknown;
  const address = typeof ptr === 'bigint' ? ptr : BigInt(koffi.address(ptr));
  if (address === MAP_FAILED || address === 0n) {
    throw new BpfError('mmap', what, -(koffi.errno() || 22));
  }
  try {
    return fn(new Uint32Array(koffi.view(ptr, length), 0, count));
  } finally {
    munmap(ptr, length);
  }
}
