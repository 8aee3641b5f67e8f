/**
 * Test support for the XDP load balancer (lb-xdp*.test.ts, bench prog-cost): BPF_PROG_TEST_RUN
 * of an XDP program as if the frame arrived on a device of the scratch namespace of
 * lb-tc-harness.ts (whose routes and neighbours make the FIB answers exact).
 */
import type { BpfObject, BpfProgram } from '../bpf/object.js';
import type { TestRunResult } from '../bpf/testrun.js';
import { XdpAction, testRun } from '../bpf/testrun.js';
import { lbTcSpec } from './lb-tc.js';
import type { LbTcNetns } from './lb-tc-harness.js';
import { CLIENT, NODE, POD_B, POD_B2, costTcpFrame, programService } from './lb-tc-harness.js';

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

export type XdpCostCase =
  'xdp-hit' | 'xdp-miss' | 'xdp-ct-hit' | 'xdp-pass-floor' | 'xdp-ct-insert-floor';

/**
 * bpf/xdp_ct_floor.c: only a new flow's two conntrack inserts, into its own ct4 (the same type,
 * size and flags as lb_xdp's), then XDP_PASS: what a new flow costs at least, whatever else the
 * pipeline does, beside the XDP_PASS floor.
 */
export const ctFloorSpec = {
  file: 'xdp_ct_floor.bpf.o',
  maps: { ct4: lbTcSpec.maps.ct4 },
  programs: ['xdp_ct_insert_floor'],
} as const;

/**
 * New flows made between two emptyings of conntrack. The flows of `xdp-hit` all go to one
 * backend, whose SNAT range is 4536 ports: 2000 flows without emptying filled up to 44% of it,
 * and the port claim then took 1.37 inserts per flow (counted). A new flow on a node that is not
 * filling one backend's range takes one; 250 keeps the range at most 5.5% full.
 */
const FLOWS_PER_FILL = 250;

export interface XdpCostResult {
  case: XdpCostCase;
  /** Median over rounds of the mean kernel-measured ns per run. */
  nsPerPacket: number;
  runs: number;
}

/**
 * Per-packet cost of lb_xdp by BPF_PROG_TEST_RUN, as measureLbTcCost does for TC (one run per
 * call on a fresh frame, so a translated frame is never fed back):
 * - xdp-hit: a new flow per packet to a backend on another node, SNAT: service lookup,
 *   selection, SNAT port claim, two conntrack inserts, NAT, FIB lookup, XDP_TX;
 * - xdp-miss: no flow, no frontend (a SYN: one conntrack lookup, two service lookups), XDP_PASS;
 * - xdp-ct-hit: an established flow's packet to that backend, XDP_TX;
 * - xdp-pass-floor: a program that only returns XDP_PASS (the floor the run itself costs);
 * - xdp-ct-insert-floor (when ctFloor is given): only xdp-hit's two conntrack inserts
 *   (ctFloorSpec), with its ct4 emptied at the same points as lb_xdp's.
 * The object must be lb_xdp in snat mode with its maps cleared. New-flow cases empty conntrack
 * every FLOWS_PER_FILL flows (between runs, not timed): they measure a node with few flows.
 */
export function measureLbXdpCost(
  obj: BpfObject<typeof lbTcSpec.maps>,
  passProg: BpfProgram,
  netns: LbTcNetns,
  opts: { runs?: number; rounds?: number; ctFloor?: BpfObject<typeof ctFloorSpec.maps> } = {},
): XdpCostResult[] {
  const runs = opts.runs ?? 2000; // below the 4536 ports of the default SNAT range
  const rounds = opts.rounds ?? 3;
  const prog = obj.program('lb_xdp');
  const SYN = 0x02;
  const ACK = 0x10;
  programService(obj, {
    serviceId: 3,
    frontend: { address: NODE, port: 30082 },
    backends: [{ id: 31, address: POD_B, port: 8080 }],
  });
  for (let i = 0; i < 1000; i++) {
    programService(obj, {
      serviceId: 1000 + i,
      frontend: { address: `198.19.${1 + (i >> 8)}.${i & 255}`, port: 80 },
      backends: [{ id: 10000 + i, address: POD_B2, port: 8080 }],
    });
  }
  let port = 1024;
  const frames: Record<XdpCostCase, () => Buffer> = {
    'xdp-hit': () => costTcpFrame(CLIENT, port++, NODE, 30082, SYN),
    'xdp-miss': () => costTcpFrame(CLIENT, 40000, NODE, 22, SYN),
    'xdp-ct-hit': () => costTcpFrame(CLIENT, 50000, NODE, 30082, ACK),
    'xdp-pass-floor': () => costTcpFrame(CLIENT, 40000, NODE, 22, SYN),
    // The program makes its flows from a counter; the frame is only what a run needs.
    'xdp-ct-insert-floor': () => costTcpFrame(CLIENT, 40000, NODE, 22, SYN),
  };
  const ctFloor = opts.ctFloor;
  const programs: Partial<Record<XdpCostCase, BpfProgram>> = {
    'xdp-hit': prog,
    'xdp-miss': prog,
    'xdp-ct-hit': prog,
    'xdp-pass-floor': passProg,
    ...(ctFloor ? { 'xdp-ct-insert-floor': ctFloor.program('xdp_ct_insert_floor') } : {}),
  };
  // What a new-flow case's runs must return: anything else (a drop, a failed insert) is not
  // the case measured.
  const expect: Partial<Record<XdpCostCase, { retval: number; empty: () => void }>> = {
    'xdp-hit': { retval: XdpAction.TX, empty: () => obj.maps.ct4.clear() },
    ...(ctFloor
      ? { 'xdp-ct-insert-floor': { retval: XdpAction.PASS, empty: () => ctFloor.maps.ct4.clear() } }
      : {}),
  };
  const out: XdpCostResult[] = [];
  for (const c of Object.keys(programs) as XdpCostCase[]) {
    const p = programs[c];
    if (!p) continue;
    const fresh = expect[c];
    if (c === 'xdp-ct-hit') xdpTestRun(netns, prog, costTcpFrame(CLIENT, 50000, NODE, 30082, SYN));
    const means: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (c === 'xdp-hit') port = 1024 + ((r * runs) % 60000);
      let total = 0;
      for (let i = 0; i < runs; i++) {
        const result = xdpTestRun(netns, p, frames[c]());
        if (fresh && result.retval !== fresh.retval) {
          throw new Error(`${c}: run ${i} returned ${result.retval}, not ${fresh.retval}`);
        }
        total += result.durationNs;
        if (fresh && (i + 1) % FLOWS_PER_FILL === 0) fresh.empty();
      }
      means.push(total / runs);
      fresh?.empty();
    }
    means.sort((a, b) => a - b);
    out.push({ case: c, nsPerPacket: means[Math.floor(means.length / 2)] ?? 0, runs });
  }
  return out;
}
