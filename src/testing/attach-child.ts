/**
 * Runs inside a test namespace (`ip netns exec NS node attach-child.js DEV PEER_NS DEV_ADDR MODE`):
 * attaches the fixture's XDP and TC programs to DEV, sends pings at it from the peer namespace,
 * detaches, pings again, and prints one JSON report for attach.test.ts to assert on.
 * libbpf attaches through netlink in the caller's namespace, hence a child process.
 */
import { execFileSync } from 'node:child_process';
import { attachments, attachTc, attachXdp, xdpProgramId } from '../bpf/attach.js';
import type { XdpMode } from '../bpf/attach.js';
import { loadObject } from '../bpf/object.js';
import { attachFixturesSpec, Hook } from './fixtures.js';

const [dev = '', peerNs = '', target = '', mode = 'native'] = process.argv.slice(2);

function ping(): void {
  // Unanswered pings are fine: the programs count what arrives, replies are not needed.
  try {
    execFileSync(
      'ip',
      ['netns', 'exec', peerNs, 'ping', '-c', '3', '-i', '0.05', '-W', '1', target],
      { stdio: 'pipe' },
    );
  } catch {
    /* counted below */
  }
}

function tcFilters(direction: 'ingress' | 'egress'): string {
  return execFileSync('tc', ['filter', 'show', 'dev', dev, direction]).toString();
}

const obj = loadObject(attachFixturesSpec);
const counts = () => ({
  xdp: Number(obj.maps.hook_calls.lookup(Hook.XDP)),
  tc: Number(obj.maps.hook_calls.lookup(Hook.TC)),
});
try {
  const xdp = attachXdp(obj.program('xdp_count'), dev, mode as XdpMode);
  const tcIn = attachTc(obj.program('tc_count'), dev, 'ingress');
  const tcOut = attachTc(obj.program('tc_count'), dev, 'egress', { priority: 2 });
  const attached = {
    list: attachments(),
    xdpId: xdpProgramId(dev),
    ingress: tcFilters('ingress'),
    egress: tcFilters('egress'),
  };
  ping();
  const afterPing = counts();
  xdp.detach();
  tcIn.detach();
  tcOut.detach();
  const atDetach = counts();
  const detached = {
    list: attachments(),
    xdpId: xdpProgramId(dev),
    ingress: tcFilters('ingress'),
    qdiscs: execFileSync('tc', ['qdisc', 'show', 'dev', dev]).toString(),
  };
  ping();
  const afterDetach = counts();
  process.stdout.write(JSON.stringify({ attached, afterPing, atDetach, detached, afterDetach }));
} finally {
  obj.close();
}
