/**
 * BPF_PROG_TEST_RUN as a one-liner: run a loaded XDP or TC program on a crafted packet and get
 * back its verdict, the packet as the program left it, and the kernel-measured time per run.
 */
import koffi from 'koffi';
import { BpfError } from './errors.js';
import { libbpf } from './libbpf.js';
import type { BpfProgram } from './object.js';

export interface TestRunInput {
  /** The packet, starting at the Ethernet header. */
  data: Buffer;
  /** Runs of the program over the same input; duration is the average. */
  repeat?: number;
  /** Program context (struct xdp_md or struct __sk_buff), optional. */
  ctx?: Buffer;
  /** Room for the output packet; programs may grow it (encapsulation). Default: input + 256. */
  dataOutSize?: number;
}

export interface TestRunResult {
  /** The program's return value: XDP_* or TC_ACT_* verdict. */
  retval: number;
  /** The packet after the program ran. */
  data: Buffer;
  /** Average kernel time per run, in nanoseconds. */
  durationNs: number;
  /** The context after the run, when one was passed in. */
  ctx?: Buffer;
}

/** XDP verdicts (enum xdp_action) and TC verdicts, by name, for readable assertions. */
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
export const TcAction = { OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, REDIRECT: 7 } as const;

export function testRun(prog: BpfProgram, input: TestRunInput): TestRunResult {
  const dataOut = Buffer.alloc(input.dataOutSize ?? input.data.length + 256);
  const ctxOut = input.ctx ? Buffer.alloc(input.ctx.length) : null;
  const opts = {
    sz: koffi.sizeof('bpf_test_run_opts'),
    data_in: input.data,
    data_out: dataOut,
    data_size_in: input.data.length,
    data_size_out: dataOut.length,
    ctx_in: input.ctx ?? null,
    ctx_out: ctxOut,
    ctx_size_in: input.ctx?.length ?? 0,
    ctx_size_out: ctxOut?.length ?? 0,
    retval: 0,
    repeat: input.repeat ?? 1,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  const ret = libbpf.prog_test_run_opts(prog.fd, opts) as number;
  if (ret < 0) throw new BpfError('bpf_prog_test_run_opts', prog.name, ret);
  return {
    retval: opts.retval,
    data: dataOut.subarray(0, opts.data_size_out),
    durationNs: opts.duration,
    ...(ctxOut ? { ctx: ctxOut.subarray(0, opts.ctx_size_out) } : {}),
  };
}
