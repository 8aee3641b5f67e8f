/**
 * Test support for the XDP load balancer (lb-xdp*.test.ts, bench prog-cost): BPF_PROG_TEST_RUN
 * of an XDP program as if the frame arrived on a device of the scratch namespace of
 * lb-tc-harness.ts (whose routes and neighbours make the FIB answers exact).
 */
import type { BpfProgram } from '../bpf/object.js';
import type { TestRunResult } from '../bpf/testrun.js';
import { testRun } from '../bpf/testrun.js';
import type { LbTcNetns } from './lb-tc-harness.js';

/** struct xdp_md: data 0, data_end = the frame's length, ingress_ifindex, queue 0. */
function xdpContext(ifindex: number, length: number): Buffer {
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(length, 4);
  ctx.writeUInt32LE(ifindex, 12);
  return ctx;
}

/** testRun of an XDP program on a frame arriving on dev of the namespace. */
export function xdpTestRun(
  netns: LbTcNetns,
  prog: BpfProgram,
  data: Buffer,
  opts: { dev?: 'fab0' | 'p1'; repeat?: number } = {},
): TestRunResult {
  const ifindex = netns.ifindex[opts.dev ?? 'fab0'];
  return netns.run(() =>
    testRun(prog, {
      data,
      ctx: xdpContext(ifindex, data.length),
      ...(opts.repeat ? { repeat: opts.repeat } : {}),
    }),
  );
}
