/**
 * Makes a lab's veths behave as NICs do for XDP (docs/xdp.md, "In the lab"), for tests and
 * benchmarks that run the XDP fast path (src/lab/xdp.test.ts; the pps benchmark).
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.js';
import { fabricNetns } from './topology/naming.js';

/** doctor_xdp_pass: a program that only returns XDP_PASS. */
const PASS_OBJ = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../bpf/.output/probe_pass.bpf.o',
);

/**
 * What a lab of veths needs for XDP to act as it does on a NIC (docs/xdp.md, "In the lab"):
 * - XDP_TX on a veth hands the frame to its peer, which takes it only with NAPI: the nodes'
 *   fabric ports (their uplinks' peers) get an XDP_PASS program.
 * - Frames a local stack sends through veths carry CHECKSUM_PARTIAL (the TCP/UDP field holds
 *   only the pseudo-header sum), which XDP cannot see, so its incremental update breaks them;
 *   frames from a NIC always carry their full checksum. The external client and the pods
 *   compute theirs (TX checksum offload off).
 */
/** Pods started after the call send with offloaded checksums again: call it after each change. */
export function prepareLabForXdp(lab: Lab): void {
  const fabric = fabricNetns(lab.topology.names);
  for (const node of lab.topology.nodes()) {
    // -force: replace the program a previous call attached (the call is repeatable).
    execFileSync('ip', [
      '-n',
      fabric,
      '-force',
      'link',
      'set',
      'dev',
      node.fabricPort,
      'xdpdrv',
      'obj',
      PASS_OBJ,
      'sec',
      'xdp',
    ]);
  }
  for (const netns of [lab.topology.externalNetns, ...lab.topology.pods().map((p) => p.netns)]) {
    execFileSync('ip', ['netns', 'exec', netns, 'ethtool', '-K', 'eth0', 'tx', 'off'], {
      stdio: 'pipe',
    });
  }
}
