/**
 * Attach handles: each attach returns a handle whose dispose() detaches exactly what it
 * attached. Every live handle is listed by attachments(), so sluice can say what it has
 * attached where.
 */
import { closeSync, constants, existsSync, openSync, realpathSync, statSync, unlinkSync } from 'node:fs';
import koffi from 'koffi';
import { mountPoints } from './environment.js';
import { BpfError, SluiceError } from './errors.js';
import { LinkType, linkInfoByFd } from './info.js';
import type { Ptr } from './libbpf.js';
import { libbpf, libcApi } from './libbpf.js';
import type { BpfMap } from './map.js';
import type { BpfProgram } from './object.js';

export type AttachKind = 'xdp' | 'tc' | 'cgroup' | 'sk_msg';

export interface AttachmentInfo {
  kind: AttachKind;
  program: string;
  /** Interface name, cgroup path or map name. */
  target: string;
  /** xdp: native|generic; tc: ingress|egress; cgroup: the attach type. */
  point: string;
}

export interface Attachment extends AttachmentInfo {
  detach(): void;
  [Symbol.dispose](): void;
}

const live = new Set<Attachment>();

/** What this process has attached and not yet detached. */
export function attachments(): AttachmentInfo[] {
  return [...live].map(({ kind, program, target, point }) => ({ kind, program, target, point }));
}

function track(info: AttachmentInfo, detach: () => void): Attachment {
  let attached = true;
  const handle: Attachment = {
    ...info,
    detach() {
      if (!attached) return;
      attached = false;
      live.delete(handle);
      detach();
    },
    [Symbol.dispose]() {
      handle.detach();
    },
  };
  live.add(handle);
  return handle;
}

/** ifindex of an interface in the calling process's network namespace. */
export function ifindexOf(ifname: string): number {
  const index = libcApi.if_nametoindex(ifname) as number;
  if (!index) throw new BpfError('if_nametoindex', ifname, -koffi.errno());
  return index;
}

// include/uapi/linux/if_link.h
const XDP_FLAGS = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4 };

export type XdpMode = 'native' | 'generic';

/** Attaches an XDP program; fails with EBUSY if the interface already has one. */
export function attachXdp(prog: BpfProgram, ifname: string, mode: XdpMode = 'native'): Attachment {
  const ifindex = ifindexOf(ifname);
  const flags = XDP_FLAGS.UPDATE_IF_NOEXIST | (mode === 'native' ? XDP_FLAGS.DRV_MODE : XDP_FLAGS.SKB_MODE);
  const ret = libbpf.xdp_attach(ifindex, prog.fd, flags, null) as number;
  if (ret < 0) throw new BpfError('bpf_xdp_attach', `${prog.name} on ${ifname} (${mode})`, ret);
  return track({ kind: 'xdp', program: prog.name, target: ifname, point: mode }, () => {
    const modeFlag = mode === 'native' ? XDP_FLAGS.DRV_MODE : XDP_FLAGS.SKB_MODE;
    const r = libbpf.xdp_detach(ifindex, modeFlag, null) as number;
    if (r < 0) throw new BpfError('bpf_xdp_detach', `${prog.name} on ${ifname}`, r);
  });
}

/** The id of the XDP program attached to an interface, 0 when none. */
export function xdpProgramId(ifname: string): number {
  const id = [0];
  const ret = libbpf.xdp_query_id(ifindexOf(ifname), 0, id) as number;
  if (ret < 0) throw new BpfError('bpf_xdp_query_id', ifname, ret);
  return id[0] ?? 0;
}

export type TcDirection = 'ingress' | 'egress';
const TC_POINT = { ingress: 1, egress: 2 };
// clsact hooks this process created, with how many of our filters use each.
const clsactUsers = new Map<number, number>();

export interface TcOptions {
  /** Filter priority; lower runs first. Default 1. */
  priority?: number;
  /** Filter handle. Default 1. */
  handle?: number;
}

/** Attaches a TC (sched_cls, direct-action) program on the interface's clsact qdisc. */
export function attachTc(prog: BpfProgram, ifname: string, direction: TcDirection, opts: TcOptions = {}): Attachment {
  const ifindex = ifindexOf(ifname);
  const hook = { sz: 24, ifindex, attach_point: TC_POINT[direction], parent: 0 };
  const created = libbpf.tc_hook_create(hook) as number;
  // EEXIST: a clsact qdisc is already there (ours or not); we share it and never remove it.
  const ownsHook = created === 0;
  if (created < 0 && created !== -17) throw new BpfError('bpf_tc_hook_create', `clsact on ${ifname}`, created);
  if (ownsHook || clsactUsers.has(ifindex)) clsactUsers.set(ifindex, (clsactUsers.get(ifindex) ?? 0) + 1);
  const tcOpts = { sz: 32, prog_fd: prog.fd, flags: 0, prog_id: 0, handle: opts.handle ?? 1, priority: opts.priority ?? 1 };
  const ret = libbpf.tc_attach(hook, tcOpts) as number;
  if (ret < 0) {
    releaseClsact(ifindex, hook);
    throw new BpfError('bpf_tc_attach', `${prog.name} on ${ifname} ${direction}`, ret);
  }
  return track({ kind: 'tc', program: prog.name, target: ifname, point: direction }, () => {
    const detachOpts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: tcOpts.handle, priority: tcOpts.priority };
    const r = libbpf.tc_detach(hook, detachOpts) as number;
    releaseClsact(ifindex, hook);
    if (r < 0) throw new BpfError('bpf_tc_detach', `${prog.name} on ${ifname} ${direction}`, r);
  });
}

function releaseClsact(ifindex: number, hook: { sz: number; ifindex: number; attach_point: number; parent: number }): void {
  const users = clsactUsers.get(ifindex);
  if (users === undefined) return;
  if (users > 1) {
    clsactUsers.set(ifindex, users - 1);
    return;
  }
  clsactUsers.delete(ifindex);
  // Destroying with both points removes the whole clsact qdisc we created.
  libbpf.tc_hook_destroy({ ...hook, attach_point: TC_POINT.ingress | TC_POINT.egress });
}

/** Names of cgroup attach types (enum bpf_attach_type) for listings. */
const CGROUP_ATTACH_NAMES: Record<number, string> = {
  2: 'sock_create',
  3: 'sock_ops',
  8: 'bind4',
  10: 'connect4',
  11: 'connect6',
  12: 'post_bind4',
  14: 'sendmsg4',
  15: 'sendmsg6',
  19: 'recvmsg4',
  20: 'recvmsg6',
  29: 'getpeername4',
  30: 'getpeername6',
};

/**
 * Attaches a cgroup program (connect4, sendmsg4, recvmsg4, getpeername4, sock_ops, ...) with a
 * BPF link, so it detaches when the handle is disposed or the process dies. Refuses a cgroup
 * hierarchy's root: sluice only attaches to cgroups it made.
 */
export function attachCgroup(prog: BpfProgram, cgroupPath: string): Attachment {
  const path = realpathSync(cgroupPath);
  if (isCgroupRoot(path)) {
    throw new SluiceError('ATTACH', `refusing to attach ${prog.name} to the root cgroup ${path}: use a cgroup sluice made`);
  }
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  let link: Ptr;
  try {
    link = libbpf.program_attach_cgroup(prog.handle, fd) as Ptr;
    if (!link) throw new BpfError('bpf_program__attach_cgroup', `${prog.name} on ${path}`, -koffi.errno());
  } finally {
    closeSync(fd); // the link holds its own reference to the cgroup
  }
  const point = CGROUP_ATTACH_NAMES[prog.expectedAttachType] ?? `attach type ${prog.expectedAttachType}`;
  return track({ kind: 'cgroup', program: prog.name, target: path, point }, () => {
    libbpf.link_destroy(link);
  });
}

function isCgroupRoot(path: string): boolean {
  return mountPoints('cgroup2').includes(path);
}

const BPF_SK_MSG_VERDICT = 7;

/** Attaches an sk_msg program to a sockhash/sockmap: it then sees every message its sockets send. */
export function attachSkMsg(prog: BpfProgram, map: BpfMap<unknown, unknown>): Attachment {
  const ret = libbpf.prog_attach(prog.fd, map.fd, BPF_SK_MSG_VERDICT, 0) as number;
  if (ret < 0) throw new BpfError('bpf_prog_attach', `${prog.name} on ${map.name}`, ret);
  return track({ kind: 'sk_msg', program: prog.name, target: map.name, point: 'sk_msg_verdict' }, () => {
    const r = libbpf.prog_detach2(prog.fd, map.fd, BPF_SK_MSG_VERDICT) as number;
    if (r < 0) throw new BpfError('bpf_prog_detach2', `${prog.name} on ${map.name}`, r);
  });
}

// ---------------------------------------------------------------------------------------------
// Persistent attachments: they outlive the process that made them, so an agent restart (or a
// crash) leaves the datapath attached. A restarted agent adopts them instead of attaching again.

/** What a persistent attach did: a new attachment, or an existing one running the new program. */
export type PersistentOutcome = 'attached' | 'updated' | 'replaced';

/**
 * Attaches a cgroup program through a BPF link pinned at `pinPath` (on bpffs): the pin, not this
 * process, keeps it attached. If a link is already pinned there for the same cgroup and attach
 * type, it is adopted and pointed at `prog` atomically with bpf_link_update: there is no moment
 * without a program, and the program that runs is the one just loaded, with this start's
 * .rodata (a program's tag does not cover .rodata, so "same tag" would not mean "same config").
 * A stale pin (its cgroup is gone, or another hook) is replaced. Refuses a hierarchy's root.
 */
export function attachCgroupPinned(prog: BpfProgram, cgroupPath: string, pinPath: string): PersistentOutcome {
  const path = realpathSync(cgroupPath);
  if (isCgroupRoot(path)) {
    throw new SluiceError('ATTACH', `refusing to attach ${prog.name} to the root cgroup ${path}: use a cgroup sluice made`);
  }
  const what = `${prog.name} on ${path}`;
  const cgroupId = statSync(path, { bigint: true }).ino;
  if (existsSync(pinPath)) {
    const fd = libbpf.obj_get(pinPath) as number;
    if (fd < 0) throw new BpfError('bpf_obj_get', pinPath, fd);
    try {
      const info = linkInfoByFd(fd, pinPath);
      if (info.type === LinkType.CGROUP && info.cgroupId === cgroupId && info.attachType === prog.expectedAttachType) {
        const ret = libbpf.link_update(fd, prog.fd, null) as number;
        if (ret < 0) throw new BpfError('bpf_link_update', `${pinPath} -> ${prog.name}`, ret);
        return 'updated';
      }
    } finally {
      closeSync(fd);
    }
    unlinkSync(pinPath); // stale: another cgroup or hook; dropping the pin releases that link
  }
  const dirFd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  let link: Ptr;
  try {
    link = libbpf.program_attach_cgroup(prog.handle, dirFd) as Ptr;
    if (!link) throw new BpfError('bpf_program__attach_cgroup', what, -koffi.errno());
  } finally {
    closeSync(dirFd);
  }
  const ret = libbpf.link_pin(link, pinPath) as number;
  // Destroying the handle closes this process's fd; once pinned, the link stays attached.
  libbpf.link_destroy(link);
  if (ret < 0) throw new BpfError('bpf_link__pin', `${what} at ${pinPath}`, ret);
  return 'attached';
}

/** Removes a pinned cgroup link: the program detaches unless something else holds the link. */
export function detachCgroupPinned(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false;
  unlinkSync(pinPath);
  return true;
}

const BPF_TC_F_REPLACE = 1;

/**
 * Attaches a TC program that stays attached after this process exits (netlink filters belong to
 * the interface). An existing filter at the same handle and priority is replaced in one netlink
 * request (BPF_TC_F_REPLACE: packets see the old program or the new one, never none). The
 * clsact qdisc is created when missing and never removed here.
 */
export function attachTcPersistent(prog: BpfProgram, ifname: string, direction: TcDirection, opts: TcOptions = {}): PersistentOutcome {
  const ifindex = ifindexOf(ifname);
  const what = `${prog.name} on ${ifname} ${direction}`;
  const hook = { sz: 24, ifindex, attach_point: TC_POINT[direction], parent: 0 };
  const created = libbpf.tc_hook_create(hook) as number;
  if (created < 0 && created !== -17) throw new BpfError('bpf_tc_hook_create', `clsact on ${ifname}`, created);
  const handle = opts.handle ?? 1;
  const priority = opts.priority ?? 1;
  const query = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle, priority };
  const found = libbpf.tc_query(hook, query) as number;
  // ENOENT: no such filter; EINVAL: no filter chain yet (nothing was ever attached here).
  if (found < 0 && found !== -2 && found !== -22) throw new BpfError('bpf_tc_query', what, found);
  const outcome: PersistentOutcome = found === 0 && query.prog_id ? 'replaced' : 'attached';
  const tcOpts = { sz: 32, prog_fd: prog.fd, flags: outcome === 'replaced' ? BPF_TC_F_REPLACE : 0, prog_id: 0, handle, priority };
  const ret = libbpf.tc_attach(hook, tcOpts) as number;
  if (ret < 0) throw new BpfError('bpf_tc_attach', what, ret);
  return outcome;
}

/** The id of the program a TC filter runs, 0 when there is no such filter. */
export function tcProgramId(ifname: string, direction: TcDirection, opts: TcOptions = {}): number {
  const hook = { sz: 24, ifindex: ifindexOf(ifname), attach_point: TC_POINT[direction], parent: 0 };
  const query = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: opts.handle ?? 1, priority: opts.priority ?? 1 };
  const ret = libbpf.tc_query(hook, query) as number;
  if (ret === -2 || ret === -22) return 0; // no filter, or no clsact qdisc at all
  if (ret < 0) throw new BpfError('bpf_tc_query', `${ifname} ${direction}`, ret);
  return query.prog_id;
}
