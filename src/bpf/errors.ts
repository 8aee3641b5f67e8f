/**
 * Errors from the kernel and libbpf, named the way an operator reads them:
 * `bpf_map_update_elem(lb_services): E2BIG`.
 */
import { constants } from 'node:os';
import { SluiceError } from '../errors.js';

export { SluiceError };

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Several names share a number (EAGAIN/EWOULDBLOCK); keep the first, the canonical one.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
// libbpf's own error codes (libbpf.h: enum libbpf_errno), above the kernel's range.
const libbpfErrnos: Record<number, string> = {
  4000: 'LIBBPF_ERRNO__LIBELF',
  4001: 'LIBBPF_ERRNO__FORMAT',
  4002: 'LIBBPF_ERRNO__KVERSION',
  4003: 'LIBBPF_ERRNO__ENDIAN',
  4004: 'LIBBPF_ERRNO__INTERNAL',
  4005: 'LIBBPF_ERRNO__RELOC',
  4006: 'LIBBPF_ERRNO__LOAD',
  4007: 'LIBBPF_ERRNO__VERIFY',
  4008: 'LIBBPF_ERRNO__PROG2BIG',
  4009: 'LIBBPF_ERRNO__KVER',
  4010: 'LIBBPF_ERRNO__PROGTYPE',
  4011: 'LIBBPF_ERRNO__WRNGPID',
  4012: 'LIBBPF_ERRNO__INVSEQ',
  4013: 'LIBBPF_ERRNO__NLPARSE',
};

/** The symbolic name of an errno value (sign ignored), e.g. 2 -> 'ENOENT'. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return errnoNames.get(n) ?? libbpfErrnos[n] ?? `errno ${n}`;
}

/** Stable codes for errors sluice raises itself; each is explained in docs/errors.md. */
export const ERROR_CODES = [
  'BPF_CALL',
  'BPF_LOAD',
  'BTF_MISMATCH',
  'BTF_MISSING',
  'MAP_NOT_FOUND',
  'PROGRAM_NOT_FOUND',
  'CODEC',
  'ATTACH',
  'NOT_ROOT',
  'NO_BPFFS',
  'NO_CGROUP2',
] as const;
export type SluiceErrorCode = (typeof ERROR_CODES)[number];

/** A failed libbpf or bpf() call: which call, on which object, and the errno. */
export class BpfError extends SluiceError {
  readonly call: string;
  readonly object: string;
  readonly errno: number;
  readonly errnoName: string;
  constructor(call: string, object: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super('BPF_CALL', `${call}(${object}): ${name}${detail ? `\n${detail}` : ''}`);
    this.name = 'BpfError';
    this.call = call;
    this.object = object;
    this.errno = Math.abs(errno);
    this.errnoName = name;
  }
}

/** libbpf 1.x returns -errno from int-returning calls; turn that into a BpfError. */
export function check(ret: number, call: string, object: string): number {
  if (ret < 0) throw new BpfError(call, object, ret);
  return ret;
}
