/**
 * What the kernel says about a BPF object held by fd (BPF_OBJ_GET_INFO_BY_FD): enough of
 * struct bpf_map_info, bpf_prog_info and bpf_link_info (include/uapi/linux/bpf.h) to adopt
 * pinned maps and links safely. Offsets are the uapi's, which never move.
 */
import { closeSync } from 'node:fs';
import { BpfError } from './errors.js';
import { libbpf } from './libbpf.js';

// Larger than any of the three structs on current kernels; the kernel accepts a longer buffer
// as long as the tail is zero, and writes back how much it filled.
const INFO_SIZE = 512;

function objectInfo(fd: number, what: string): Buffer {
  const buf = Buffer.alloc(INFO_SIZE);
  const len = [INFO_SIZE];
  const ret = libbpf.obj_get_info_by_fd(fd, buf, len) as number;
  if (ret < 0) throw new BpfError('bpf_obj_get_info_by_fd', what, ret);
  return buf;
}

export interface MapInfoFull {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

export function mapInfoByFd(fd: number, what: string): MapInfoFull {
  const b = objectInfo(fd, what);
  const nameBytes = b.subarray(24, 40);
  const end = nameBytes.indexOf(0);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    keySize: b.readUInt32LE(8),
    valueSize: b.readUInt32LE(12),
    maxEntries: b.readUInt32LE(16),
    flags: b.readUInt32LE(20),
    name: nameBytes.subarray(0, end < 0 ? 16 : end).toString(),
    btfId: b.readUInt32LE(64),
    btfKeyTypeId: b.readUInt32LE(68),
    btfValueTypeId: b.readUInt32LE(72),
  };
}

export interface ProgInfo {
  type: number;
  id: number;
  /** The kernel's hash of the instructions (map references masked): same code, same tag. */
  tag: string;
}

export function progInfoByFd(fd: number, what: string): ProgInfo {
  const b = objectInfo(fd, what);
  return { type: b.readUInt32LE(0), id: b.readUInt32LE(4), tag: b.subarray(8, 16).toString('hex') };
}

/** The program with this id (e.g. the one a link or a TC filter runs). */
export function progInfoById(id: number, what: string): ProgInfo {
  const fd = libbpf.prog_get_fd_by_id(id) as number;
  if (fd < 0) throw new BpfError('bpf_prog_get_fd_by_id', `${what} (prog id ${id})`, fd);
  try {
    return progInfoByFd(fd, what);
  } finally {
    closeSync(fd);
  }
}

/** enum bpf_link_type */
export const LinkType = { CGROUP: 3 } as const;

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  /** For cgroup links: the cgroup's id (its inode on cgroup2), 0 once the cgroup is gone. */
  cgroupId: bigint;
  /** For cgroup links: enum bpf_attach_type. */
  attachType: number;
}

export function linkInfoByFd(fd: number, what: string): LinkInfo {
  const b = objectInfo(fd, what);
  // The union after type, id and prog_id is 8-byte aligned: it starts at 16.
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    progId: b.readUInt32LE(8),
    cgroupId: b.readBigUInt64LE(16),
    attachType: b.readUInt32LE(24),
  };
}
