/**
 * The doctor's real attach test, child side: `ip netns exec sl-doctor-<pid> node netns-probe.js
 * IFNAME`. Loads the pass-through programs of bpf/probe_pass.c, attaches XDP (native) and TC
 * (clsact ingress and egress) to IFNAME, detaches, and prints one JSON line (NetnsProbeReport).
 *
 * It refuses to run anywhere but inside an `sl-` namespace on an `sl-` interface, so it can never
 * attach to the machine's own interfaces, even when started by hand.
 */
import { execFileSync } from 'node:child_process';
import type { Attachment } from '../bpf/attach.js';
import { attachTc, attachXdp } from '../bpf/attach.js';
import { loadObject } from '../bpf/object.js';
import type { AttachOutcome, NetnsProbeReport } from './netns.js';

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.trim().split('\n')[0] ?? '';
}

function attempt(fn: () => void): AttachOutcome {
  try {
    fn();
    return { ok: true };
  } catch (error) {
    return { ok: false, error: message(error) };
  }
}

/** The names `ip netns identify` gives this process's network namespace. */
function currentNetns(): string[] {
  const out = execFileSync('ip', ['netns', 'identify', String(process.pid)], {
    stdio: 'pipe',
    encoding: 'utf8',
  });
  return out.split('\n').filter((line) => line.trim() !== '');
}

function probe(ifname: string | undefined): NetnsProbeReport {
  if (!ifname?.startsWith('sl-')) {
    return { ok: false, error: `usage: netns-probe.js IFNAME (an sl- interface), got '${ifname}'` };
  }
  const names = currentNetns();
  if (!names.some((n) => n.startsWith('sl-'))) {
    return { ok: false, error: 'refusing to attach: not inside an sl- network namespace' };
  }

  const obj = loadObject({
    file: 'probe_pass.bpf.o',
    maps: {},
    programs: ['doctor_xdp_pass', 'doctor_tc_pass'],
  });
  try {
    const xdp = obj.program('doctor_xdp_pass');
    const tc = obj.program('doctor_tc_pass');

    const xdpNative = attempt(() => attachXdp(xdp, ifname, 'native').detach());
    const xdpGeneric = xdpNative.ok
      ? null
      : attempt(() => attachXdp(xdp, ifname, 'generic').detach());

    // Both directions at once, as the datapath uses them, sharing one clsact qdisc.
    let ingress: Attachment | undefined;
    let tcIngress = attempt(() => {
      ingress = attachTc(tc, ifname, 'ingress');
    });
    const tcEgress = attempt(() => attachTc(tc, ifname, 'egress').detach());
    const detached = attempt(() => ingress?.detach());
    if (tcIngress.ok && !detached.ok) tcIngress = detached;

    return { ok: true, xdpNative, xdpGeneric, tcIngress, tcEgress };
  } finally {
    obj.close();
  }
}

let report: NetnsProbeReport;
try {
  report = probe(process.argv[2]);
} catch (error) {
  report = { ok: false, error: message(error) };
}
process.stdout.write(`${JSON.stringify(report)}\n`);
