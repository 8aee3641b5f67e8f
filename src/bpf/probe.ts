/**
 * Kernel feature probes: can this kernel load a program type, create a map type, let a program
 * type call a helper? Thin typed wrappers over libbpf's probes. Each answer is asked once per
 * process and remembered (as cilium/ebpf does): the kernel does not change under us.
 *
 * The probes load a tiny program or create a tiny map. Without CAP_BPF they answer false for
 * everything, so callers that need a meaningful answer check for root first.
 */
import { closeSync } from 'node:fs';
import koffi from 'koffi';
import { BpfError } from './errors.js';
import { libbpf, ProgLoadOpts } from './libbpf.js';
import { withLibbpfLog } from './log.js';

/** enum bpf_prog_type, include/uapi/linux/bpf.h (only the types sluice probes). */
export const PROG_TYPES = {
  socket_filter: 1, // BPF_PROG_TYPE_SOCKET_FILTER
  sched_cls: 3, // BPF_PROG_TYPE_SCHED_CLS (TC, clsact direct-action)
  xdp: 6, // BPF_PROG_TYPE_XDP
  cgroup_skb: 8, // BPF_PROG_TYPE_CGROUP_SKB
  cgroup_sock: 9, // BPF_PROG_TYPE_CGROUP_SOCK
  sock_ops: 13, // BPF_PROG_TYPE_SOCK_OPS
  sk_msg: 16, // BPF_PROG_TYPE_SK_MSG
  cgroup_sock_addr: 18, // BPF_PROG_TYPE_CGROUP_SOCK_ADDR (connect4, sendmsg4, ...)
} as const;
export type ProgTypeName = keyof typeof PROG_TYPES;

/** enum bpf_map_type, include/uapi/linux/bpf.h (only the types sluice probes). */
export const MAP_TYPES = {
  hash: 1, // BPF_MAP_TYPE_HASH
  array: 2, // BPF_MAP_TYPE_ARRAY
  percpu_array: 6, // BPF_MAP_TYPE_PERCPU_ARRAY
  lru_hash: 9, // BPF_MAP_TYPE_LRU_HASH
  lpm_trie: 11, // BPF_MAP_TYPE_LPM_TRIE
  sockmap: 15, // BPF_MAP_TYPE_SOCKMAP
  sockhash: 18, // BPF_MAP_TYPE_SOCKHASH
  ringbuf: 27, // BPF_MAP_TYPE_RINGBUF
} as const;
export type MapTypeName = keyof typeof MAP_TYPES;

/**
 * Helper ids: their position in __BPF_FUNC_MAPPER, include/uapi/linux/bpf.h (the same numbers
 * as libbpf's bpf_helper_defs.h, e.g. `bpf_set_retval ... = (void *) 187`).
 */
export const HELPERS = {
  map_lookup_elem: 1,
  redirect: 23,
  setsockopt: 49,
  sock_hash_update: 70,
  msg_redirect_hash: 71,
  set_retval: 187,
} as const;
export type HelperName = keyof typeof HELPERS;

const EINVAL = 22;
const cache = new Map<string, boolean>();

function resolveId<T extends Record<string, number>>(
  table: T,
  value: keyof T | number,
  call: string,
  what: string,
): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
      throw new BpfError(call, `${what} ${value}`, -EINVAL);
    }
    return value;
  }
  const id = Object.hasOwn(table, value) ? table[value] : undefined;
  if (id === undefined) throw new BpfError(call, `unknown ${what} '${String(value)}'`, -EINVAL);
  return id;
}

/** 1 -> true, 0 -> false, <0 -> BpfError naming the call, the object and the errno. */
function answer(key: string, call: string, object: string, probe: () => number): boolean {
  const known = cache.get(key);
  if (known !== undefined) return known;
  // libbpf may log while probing; collect (and so silence) it instead of printing to stderr.
  const ret = withLibbpfLog(probe);
  if (ret < 0) throw new BpfError(call, object, ret);
  const supported = ret > 0;
  cache.set(key, supported);
  return supported;
}

function label(value: string | number, id: number): string {
  return typeof value === 'string' ? value : String(id);
}

/** Whether the kernel loads programs of this type (a name, or an enum bpf_prog_type value). */
export function probeProgType(type: ProgTypeName | number): boolean {
  const call = 'libbpf_probe_bpf_prog_type';
  const id = resolveId(PROG_TYPES, type, call, 'prog type');
  return answer(`prog:${id}`, call, `prog type ${label(type, id)}`, () =>
    Number(libbpf.probe_prog_type(id, null)),
  );
}

/** Whether the kernel creates maps of this type (a name, or an enum bpf_map_type value). */
export function probeMapType(type: MapTypeName | number): boolean {
  const call = 'libbpf_probe_bpf_map_type';
  const id = resolveId(MAP_TYPES, type, call, 'map type');
  return answer(`map:${id}`, call, `map type ${label(type, id)}`, () =>
    Number(libbpf.probe_map_type(id, null)),
  );
}

/*
 * libbpf_probe_bpf_helper() decides from the verifier log, and libbpf before 1.5 knows only the
 * older wordings ("invalid func", "unknown func"). Newer kernels (6.18 here) say "program of this
 * type cannot use helper", which libbpf 1.1 takes for "supported": it answers true for
 * bpf_set_retval in XDP. So a yes from libbpf is confirmed by loading the same two-instruction
 * program (call helper; exit) ourselves and reading the log.

 */
/** enum bpf_attach_type, include/uapi/linux/bpf.h: what libbpf's probe uses per prog type. */
const PROBE_ATTACH_TYPE: Record<number, number> = {
  [PROG_TYPES.cgroup_sock_addr]: 10, // BPF_CGROUP_INET4_CONNECT
};
// struct bpf_insn, include/uapi/linux/bpf.h: {u8 code; u8 regs; s16 off; s32 imm}
const BPF_CALL = 0x85; // BPF_JMP | BPF_CALL
const BPF_EXIT = 0x95; // BPF_JMP | BPF_EXIT
const HELPER_REFUSED = /invalid func |unknown func |program of this type cannot use helper /;

/** The verifier's log for `call helper; exit` in this program type. */
function helperCallLog(progType: number, helper: number): string {
  const insns = Buffer.alloc(16);
  insns.writeUInt8(BPF_CALL, 0);
  insns.writeInt32LE(helper, 4);
  insns.writeUInt8(BPF_EXIT, 8);
  const log = Buffer.alloc(4096);
  const opts = {
    sz: koffi.sizeof(ProgLoadOpts),
    expected_attach_type: PROBE_ATTACH_TYPE[progType] ?? 0,
    log_level: 1,
    log_size: log.length,
    log_buf: log,
  };
  const fd = Number(libbpf.prog_load(progType, null, 'GPL', insns, 2, opts));
  if (fd >= 0) closeSync(fd);
  const end = log.indexOf(0);
  return log.toString('utf8', 0, end < 0 ? log.length : end);
}

/** Whether programs of this type may call this helper. */
export function probeHelper(progType: ProgTypeName | number, helper: HelperName | number): boolean {
  const call = 'libbpf_probe_bpf_helper';
  const prog = resolveId(PROG_TYPES, progType, call, 'prog type');
  const fn = resolveId(HELPERS, helper, call, 'helper');
  const object = `helper ${label(helper, fn)} in prog type ${label(progType, prog)}`;
  return answer(`helper:${prog}:${fn}`, call, object, () => {
    const ret = Number(libbpf.probe_helper(prog, fn, null));
    if (ret !== 1) return ret;
    return HELPER_REFUSED.test(helperCallLog(prog, fn)) ? 0 : 1;
  });
}

/** The version of the libbpf.so.1 this process loaded. */
export function libbpfVersion(): { major: number; minor: number } {
  return { major: Number(libbpf.major_version()), minor: Number(libbpf.minor_version()) };
}
