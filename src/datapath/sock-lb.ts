/**
 * The socket-level load balancer (bpf/sock_lb.c): cgroup connect4/sendmsg4/recvmsg4/getpeername4
 * programs that point a pod's connect() or sendto() at a ClusterIP straight at a backend, and
 * show the service address back to the application. They read the shared lb maps
 * (src/datapath/lb.ts) and keep their own per-socket memory, whose codecs mirror
 * bpf/include/sock_lb.h and are checked against the object's BTF at load.
 *
 * The agent loads sockLbSpec with the node's pin root (so the lb maps are shared with the TC
 * object and survive restarts), programs the lb maps, and attaches with attachSocketLb to the
 * node's cgroup, which holds the node's pods.
 */
import { attachCgroup } from '../bpf/attach.js';
import type { Attachment } from '../bpf/attach.js';
import { be16, ipv4, pad, s32, struct, u32, u64 } from '../bpf/codec.js';
import type { BpfObject, ObjectSpec } from '../bpf/object.js';
import { lbMaps } from './lb.js';

/** struct sock_lb4_conn: what connect4 did to one connected socket (socket storage). */
export const SockLb4Conn = struct('sock_lb4_conn', {
  frontend_address: ipv4,
  backend_address: ipv4,
  frontend_port: be16,
  backend_port: be16,
  rev_nat_id: u32,
});

/** struct sock_lb4_rev_key: a backend an unconnected UDP socket reached through a service. */
export const SockLb4RevKey = struct('sock_lb4_rev_key', {
  cookie: u64,
  backend_address: ipv4,
  backend_port: be16,
  pad: pad(2),
});

/** struct sock_lb4_frontend: the address replies from that backend are shown to come from. */
export const SockLb4Frontend = struct('sock_lb4_frontend', {
  address: ipv4,
  port: be16,
  pad: pad(2),
  rev_nat_id: u32,
});

/** The object's programs, in attach order. */
export const SOCK_LB_PROGRAMS = [
  'sock4_connect',
  'sock4_sendmsg',
  'sock4_recvmsg',
  'sock4_getpeername',
] as const;

export const sockLbSpec = {
  file: 'sock_lb.bpf.o',
  maps: {
    ...lbMaps,
    // Keyed by a socket: user space can only look an entry up with a socket fd it holds.
    sock_lb4_conns: { key: s32, value: SockLb4Conn },
    sock_lb4_rev: { key: SockLb4RevKey, value: SockLb4Frontend },
  },
  programs: SOCK_LB_PROGRAMS,
} as const satisfies ObjectSpec;

export type SockLbObject = BpfObject<typeof sockLbSpec.maps>;

/**
 * Attaches the four programs to a cgroup (the node's; never a hierarchy root, which
 * attachCgroup refuses). All or nothing: if one attach fails, the ones made are detached.
 * Returns the four attachments, in SOCK_LB_PROGRAMS order.
 */
export function attachSocketLb(obj: SockLbObject, cgroupPath: string): Attachment[] {
  const made: Attachment[] = [];
  try {
    for (const name of SOCK_LB_PROGRAMS) made.push(attachCgroup(obj.program(name), cgroupPath));
  } catch (error) {
    for (const attachment of made.reverse()) attachment.detach();
    throw error;
  }
  return made;
}
