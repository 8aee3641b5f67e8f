/**
 * The XDP fast path end to end in a real lab (two nodes, the external client on the fabric):
 * NodePort traffic balanced by lb_xdp to a local backend (node-0: XDP makes the flow, TC
 * delivers it to the pod) and to a remote one (node-1: out again by XDP_TX, SNAT or DSR); with
 * DSR the backend's replies reach the external client from the service address directly; and an
 * interface where native XDP cannot attach falls back to TC with one log line, which
 * `sluice status` shows.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { AgentConfigInput } from '../agent/config.js';
import { openPinnedMap } from '../bpf/pinned.js';
import type { Ct4EntryValue } from '../datapath/lb-tc.js';
import { Ct4Entry, Ct4Key, CtDir, CtFlag, Verdict } from '../datapath/lb-tc.js';
import { interfaceStatus } from '../datapath/lb-xdp-status.js';
import { requireKernel } from '../testing/privileges.js';
import {
  agentPinRoot,
  liveAgent,
  writtenClusterDigest,
  setAgentOverrides,
  startAgent,
  waitProgrammed,
} from './agents.js';
import { Lab } from './lab.js';
import { runProbe } from './probe/probe.js';
import { prepareLabForXdp } from './xdp-lab.js';

const MANIFEST = join(dirname(fileURLToPath(import.meta.url)), '../../src/lab/testdata/xdp.yaml');
const NODE_PORT = 30200;
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

/** Packets a verdict counted on the node, all CPUs (bpftool: per-CPU maps by pin path). */
function verdictPackets(pinRoot: string, verdict: number): number {
  const key = [verdict & 255, (verdict >> 8) & 255, 0, 0].map(String);
  const out = execFileSync('bpftool', [
    '-j',
    'map',
    'lookup',
    'pinned',
    join(pinRoot, 'verdict_stats'),
    'key',
    ...key,
  ]).toString();
  const parsed = JSON.parse(out) as { values: { value: string[] }[] };
  let total = 0;
  for (const { value } of parsed.values) {
    total += Buffer.from(value.slice(0, 8).map((b) => Number.parseInt(b, 16))).readUInt32LE(0);
  }
  return total;
}

/** The node's conntrack entries. */
function conntrack(pinRoot: string): { dir: number; e: Ct4EntryValue }[] {
  const ct = openPinnedMap(join(pinRoot, 'ct4'), { key: Ct4Key, value: Ct4Entry });
  try {
    return ct.lookupBatch().map(([k, e]) => ({ dir: k.dir, e }));
  } finally {
    ct.close();
  }
}

function xdpLab(mode: 'snat' | 'dsr', tag: string, xdpMode: 'native' | 'generic') {
  const labName = `x${process.pid % 100000}${tag}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  const agentConfig: AgentConfigInput = { xdp: { enabled: true, mode: xdpMode }, lb: { mode } };
  const ctx = { lab: undefined as unknown as Lab, labName, stateDir };
  before(async () => {
    requireKernel();
    ctx.lab = await Lab.up({
      files: [MANIFEST],
      nodes: 2,
      proxy: 'sluice',
      stateDir,
      labName,
      agentConfig,
    });
    prepareLabForXdp(ctx.lab);
  });
  after(async () => {
    await Lab.down(stateDir, labName);
    rmSync(stateDir, { recursive: true, force: true });
  });
  const probe = (node: string, count = 8) =>
    runProbe(ctx.lab.state, ctx.lab.topology, 'external', `node/${node}`, {
      port: NODE_PORT,
      count,
      timeoutMs: 2000,
    });
  const pinRoot = (node: string) => agentPinRoot(ctx.lab.topology, node);
  const netns = (node: string) => ctx.lab.topology.node(node).netns;
  return { ctx, probe, pinRoot, netns, agentConfig };
}

describe('XDP fast path, lb.mode snat (lab)', () => {
  const { ctx, probe, pinRoot, netns, agentConfig } = xdpLab('snat', 's', 'native');

  it('sluice status: the uplinks run lb_xdp natively', () => {
    for (const node of ['node-0', 'node-1']) {
      const fab0 = interfaceStatus(netns(node)).find((s) => s.ifname === 'fab0');
      assert.equal(fab0?.mode, 'xdp-native', node);
    }
  });

  it('NodePort to local backends: XDP decides, TC delivers by the entry XDP made', async () => {
    const before = verdictPackets(pinRoot('node-0'), Verdict.XDP_HANDOFF);
    const r = await probe('node-0');
    assert.ok(r.ok, JSON.stringify(r.attempts));
    assert.ok(verdictPackets(pinRoot('node-0'), Verdict.XDP_HANDOFF) > before, 'handed off to TC');
  });

  it('NodePort to remote backends: out again by XDP_TX with SNAT, replies too', async () => {
    const before = verdictPackets(pinRoot('node-1'), Verdict.DELIVER_XDP_TX);
    const r = await probe('node-1');
    assert.ok(r.ok, JSON.stringify(r.attempts));
    // Every packet of both directions of 8 connections left by XDP_TX.
    const sent = verdictPackets(pinRoot('node-1'), Verdict.DELIVER_XDP_TX) - before;
    assert.ok(sent >= 8 * 4, `XDP_TX ${sent} packets`);
    const snat = conntrack(pinRoot('node-1')).filter(
      (c) => c.dir === CtDir.FORWARD && c.e.frontend_port === NODE_PORT,
    );
    assert.ok(snat.length > 0 && snat.every((c) => c.e.flags & CtFlag.SNAT));
  });

  it('falls back to TC, with one log line, where native XDP cannot attach', async () => {
    const lab = ctx.lab;
    const node = 'node-1';
    // A bridge has no native XDP: a second "uplink" of the node that only TC can serve.
    execFileSync('ip', ['-n', netns(node), 'link', 'add', 'xbr0', 'type', 'bridge']);
    execFileSync('ip', ['-n', netns(node), 'link', 'set', 'xbr0', 'up']);
    const agent = liveAgent(lab.topology, node);
    assert.ok(agent, 'the agent runs');
    process.kill(agent.pid, 'SIGTERM');
    for (let i = 0; i < 100 && liveAgent(lab.topology, node); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    setAgentOverrides(ctx.stateDir, {
      ...agentConfig,
      perPacketLB: { interfaces: ['fab0', 'xbr0'] },
      xdp: { enabled: true, mode: 'native', interfaces: ['fab0', 'xbr0'] },
    });
    const restarted = startAgent(lab.topology, ctx.stateDir, lab.topology.node(node));
    await waitProgrammed(
      lab.topology,
      node,
      writtenClusterDigest(ctx.stateDir),
      restarted.log ?? '',
    );
    const log = readFileSync(restarted.log ?? '', 'utf8');
    const lines = log.split('\n').filter((l) => l.includes('falls back to TC'));
    assert.equal(lines.length, 1, log);
    assert.match(lines[0] ?? '', /xbr0/);
    // What `sluice status` prints, run as a user would (the lab found by its state dir).
    const printed = JSON.parse(
      execFileSync(process.execPath, [CLI, 'status', '--node', node, '-o', 'json'], {
        env: { ...process.env, SLUICE_LAB_DIR: ctx.stateDir },
      }).toString(),
    ) as { node: string; interfaces: { ifname: string; mode: string }[] }[];
    assert.equal(printed.length, 1);
    const status = printed[0]?.interfaces ?? [];
    assert.equal(status.find((s) => s.ifname === 'fab0')?.mode, 'xdp-native');
    assert.equal(status.find((s) => s.ifname === 'xbr0')?.mode, 'tc');
    const r = await probe(node, 4);
    assert.ok(r.ok, JSON.stringify(r.attempts));
  });
});

describe('XDP fast path (generic), lb.mode dsr (lab)', () => {
  // Generic XDP here, native above: both modes end to end.
  const { probe, pinRoot, netns } = xdpLab('dsr', 'd', 'generic');

  it('sluice status: the uplinks run lb_xdp in generic mode', () => {
    for (const node of ['node-0', 'node-1']) {
      const fab0 = interfaceStatus(netns(node)).find((s) => s.ifname === 'fab0');
      assert.equal(fab0?.mode, 'xdp-generic', node);
    }
  });

  it("DSR: node-1 sends the flow to node-0's pods, whose replies reach the client from the service address", async () => {
    const learnedBefore = verdictPackets(pinRoot('node-0'), Verdict.DSR_LEARNED);
    const repliesBefore = verdictPackets(pinRoot('node-1'), Verdict.CT_REPLY);
    const txBefore = verdictPackets(pinRoot('node-1'), Verdict.DELIVER_XDP_TX);
    // A TCP connection to node-1's NodePort completes only if the SYN-ACK comes from
    // node-1:30200: the client's socket accepts nothing else.
    const r = await probe('node-1');
    assert.ok(r.ok, JSON.stringify(r.attempts));
    assert.ok(verdictPackets(pinRoot('node-0'), Verdict.DSR_LEARNED) > learnedBefore, 'learned');
    assert.ok(verdictPackets(pinRoot('node-1'), Verdict.DELIVER_XDP_TX) > txBefore, 'by XDP_TX');
    assert.equal(
      verdictPackets(pinRoot('node-1'), Verdict.CT_REPLY),
      repliesBefore,
      'no reply came back through node-1',
    );
    const atB = conntrack(pinRoot('node-0')).filter((c) => c.e.flags & CtFlag.DSR);
    assert.ok(atB.length > 0, 'DSR entries on the backend node');
    assert.ok(atB.every((c) => c.dir === CtDir.REPLY && c.e.frontend_port === NODE_PORT));
    const atA = conntrack(pinRoot('node-1')).filter((c) => c.e.frontend_port === NODE_PORT);
    assert.ok(
      atA.every((c) => c.dir === CtDir.FORWARD && c.e.flags & CtFlag.DSR),
      'no SNAT',
    );
  });
});
