/**
 * The generator against the real kernel: its frames (bpf/xdp_gen.c run by BPF_PROG_TEST_RUN,
 * through `xdp_gen frames`) are well-formed 64-byte IPv4 UDP with correct checksums whatever the
 * frame held before, and a short real run in a named lab is counted at the backend.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XdpAction } from '../bpf/testrun.js';
import { Lab } from '../lab/lab.js';
import { testLab } from '../lab/topology/testkit.js';
import { checksumErrors, parsePacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { FRAME_BYTES, GEN_OBJECT, XDP_GEN, macOf } from './pktgen.js';
import type { PpsLab } from './scenarios/pps.js';
import { downLab, measure, ppsManifests, upLab } from './scenarios/pps.js';
import { toYaml } from './lab/fleet.js';

const ADDRESSING = [
  '--src-mac',
  '02:00:00:00:00:01',
  '--dst-mac',
  '02:00:00:00:00:02',
  '--dst-ip',
  '198.18.0.10',
  '--dport',
  '30701',
];

function frames(args: string[]): { retval: number; data: Buffer }[] {
  const out = execFileSync(XDP_GEN, ['frames', '--obj', GEN_OBJECT, ...ADDRESSING, ...args]);
  const parsed = JSON.parse(out.toString()) as { frames: { retval: number; data: string }[] };
  return parsed.frames.map((f) => ({ retval: f.retval, data: Buffer.from(f.data, 'hex') }));
}

describe('xdp_gen frames (BPF_PROG_TEST_RUN)', () => {
  before(requireKernel);

  it('makes 64-byte IPv4 UDP frames with correct checksums, the source port varying', () => {
    const got = frames(['--src-ip', '198.18.0.2', '--flows', 'steady', '--count', '3']);
    assert.deepEqual(
      got.map((f) => f.retval),
      [XdpAction.REDIRECT, XdpAction.REDIRECT, XdpAction.REDIRECT],
    );
    got.forEach((f, i) => {
      assert.equal(f.data.length, FRAME_BYTES);
      const p = parsePacket(f.data);
      assert.equal(p.eth?.dst, '02:00:00:00:00:02');
      assert.equal(p.eth?.src, '02:00:00:00:00:01');
      assert.equal(p.ipv4?.src, '198.18.0.2');
      assert.equal(p.ipv4?.dst, '198.18.0.10');
      assert.equal(p.ipv4?.totalLength, FRAME_BYTES - 14);
      assert.equal(p.udp?.sport, 1024 + i);
      assert.equal(p.udp?.dport, 30701);
      assert.equal(p.udp?.length, FRAME_BYTES - 14 - 20);
      assert.notEqual(p.udp?.checksum, 0);
      assert.deepEqual(checksumErrors(f.data), []);
    });
  });

  it('writes the whole frame: a dirty input (a recycled live frame) gives the same output', () => {
    const args = ['--src-ip', '198.18.64.0', '--flows', 'new', '--count', '4'];
    assert.deepEqual(
      frames([...args, '--dirty']).map((f) => f.data.toString('hex')),
      frames(args).map((f) => f.data.toString('hex')),
    );
  });

  it('new: every packet a new 5-tuple (source port, then source address), until the space wraps', () => {
    const got = frames([
      '--src-ip',
      '198.18.64.0',
      '--saddr-count',
      '3',
      '--sport-count',
      '2',
      '--flows',
      'new',
      '--count',
      '7',
    ]);
    const tuples = got.map((f) => {
      assert.deepEqual(checksumErrors(f.data), []);
      const p = parsePacket(f.data);
      return `${p.ipv4?.src}:${p.udp?.sport}`;
    });
    assert.deepEqual(tuples, [
      '198.18.64.0:1024',
      '198.18.64.0:1025',
      '198.18.64.1:1024',
      '198.18.64.1:1025',
      '198.18.64.2:1024',
      '198.18.64.2:1025',
      '198.18.64.0:1024',
    ]);
  });

  it('a flow count repeats the same flows', () => {
    const got = frames(['--src-ip', '198.18.0.2', '--flows', '4', '--count', '5']);
    assert.deepEqual(got[4]?.data, got[0]?.data);
    assert.equal(new Set(got.slice(0, 4).map((f) => f.data.toString('hex'))).size, 4);
  });
});

/**
 * A one-service pps lab for the describe block that calls it: up() brings it up with the given
 * lab kind (once), and the block's after hook removes it, also when up() failed half way.
 */
function ppsTestLab(prefix: string): {
  up: (kind: Omit<Parameters<typeof upLab>[0], 'name'>) => Promise<PpsLab>;
} {
  const { labName, stateDir } = testLab();
  const manifestDir = mkdtempSync(join(tmpdir(), prefix));
  let l: PpsLab | undefined;
  before(requireKernel);
  after(async () => {
    if (l) await downLab(l);
    else await Lab.down(stateDir, labName);
    rmSync(manifestDir, { recursive: true, force: true });
  });
  return {
    async up(kind) {
      const manifest = join(manifestDir, 'pps.yaml');
      writeFileSync(manifest, toYaml(ppsManifests(1)));
      l = await upLab({ ...kind, name: labName }, manifest, stateDir);
      return l;
    },
  };
}

describe('pps in a lab', () => {
  const lab = ppsTestLab('sluice-pps-test-');

  it('counts generated packets at the backend, through node-0 NodePort to node-1', async () => {
    const l = await lab.up({ proxy: 'nftables' });
    const ctx = {
      signal: new AbortController().signal,
      progress: () => undefined,
      note: () => undefined,
    };
    const got = await measure('nftables', l, 'steady', { generator: 0, node: 0 }, 0.5, ctx);
    assert.ok(got.pps !== undefined && got.pps > 0, `pps ${got.pps}`);
    assert.ok(
      got['cpu-ns-per-packet'] !== undefined && got['cpu-ns-per-packet'] > 0,
      `cpu-ns-per-packet ${got['cpu-ns-per-packet']}`,
    );
  });
});

describe('xdp-fwd and xdp-fwd-ct, the path ceilings, in a lab', () => {
  const lab = ppsTestLab('sluice-pps-fwd-test-');

  it('forward at node 0 with XDP_TX, through node 1 to the backend, where it is counted', async () => {
    const l = await lab.up({ proxy: 'none', xdp: true });
    const notes: Record<string, string | number> = {};
    const ctx = {
      signal: new AbortController().signal,
      progress: () => undefined,
      note: (k: string, v: string | number) => void (notes[k] = v),
    };
    const got = await measure('xdp-fwd', l, 'steady', { generator: 0, node: 0 }, 0.5, ctx);
    // No proxy runs in this lab: what reached the backend's pod was translated by xdp_fwd.
    assert.ok(got.pps !== undefined && got.pps > 0, `pps ${got.pps}`);
    assert.equal(l.fwdPath?.backend, l.lab.topology.pod(l.backendPod).ip);
    assert.equal(
      l.fwdPath?.nextHopMac,
      await macOf(l.lab.topology, { target: { node: 'node-1' } }, 'fab0'),
    );
    // Node 0 sent at least what arrived (the note is rounded to a whole packet per second).
    assert.ok(Number(notes['node0-xdp-tx-pps']) >= Math.floor(got.pps), JSON.stringify(notes));
    assert.ok(Number(notes['node0-xdp-tx-err-pps']) >= 0, JSON.stringify(notes));
    // xdp-fwd-ct, the tracking ceiling, in the same lab: its program takes xdp_fwd's place on
    // fab0 (xdp_gen attach replaces it for the run) and delivers too.
    const tracked = await measure('xdp-fwd-ct', l, 'new', { generator: 0, node: 0 }, 0.5, ctx);
    assert.ok(tracked.pps !== undefined && tracked.pps > 0, `xdp-fwd-ct pps ${tracked.pps}`);
    assert.ok(Number(notes['node0-xdp-tx-pps']) >= Math.floor(tracked.pps), JSON.stringify(notes));
  });
});
