/** Specs of the test-only BPF objects in bpf/test/. */
import { u32, u64 } from '../bpf/codec.js';
import type { ObjectSpec } from '../bpf/object.js';

/** enum hook in bpf/test/attach_fixtures.c */
export const Hook = {
  XDP: 0,
  TC: 1,
  CONNECT4: 2,
  SENDMSG4: 3,
  RECVMSG4: 4,
  GETPEERNAME4: 5,
  SOCKOPS: 6,
  SK_MSG: 7,
} as const;

export const attachFixturesSpec = {
  file: 'test/attach_fixtures.bpf.o',
  maps: {
    hook_calls: { key: u32, value: u64 },
    sock_hash: { key: u32, value: u64 },
  },
  programs: [
    'xdp_count',
    'tc_count',
    'connect4_count',
    'sendmsg4_count',
    'recvmsg4_count',
    'getpeername4_count',
    'sockops_count',
    'sk_msg_count',
  ],
} as const satisfies ObjectSpec;
