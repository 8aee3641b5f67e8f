/**
 * Restart safety of the sluice agent, in a real lab: kill -9 a node's agent while a pod holds
 * an established TCP connection through a ClusterIP and keeps opening new ones. The connection
 * must survive, new connections must keep working on the pinned state while no agent runs, and
 * the restarted agent must adopt the pins and reconcile without a flush: no map write, the
 * same map contents, and at no moment a frontend that disappears or loses its backends.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { dumpProgrammed, serviceFlagNames } from '../agent/dump.js';
import { listFrontends, readPinnedProgrammed } from '../agent/inspect.js';
import { backendName, planForNode } from '../agent/plan.js';
import { openPinnedMap } from '../bpf/pinned.js';
import { lbMaps } from '../datapath/lb.js';
import { objectKey } from '../model/index.js';
import { requireKernel } from '../testing/privileges.js';
import {
  agentHealth,
  agentPinRoot,
  liveAgent,
  writtenClusterDigest,
  startAgent,
  waitProgrammed,
} from './agents.js';
import { Lab } from './lab.js';

const SEMANTICS = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../src/lab/testdata/semantics.yaml',
);

/**
 * Runs in the client pod for `ms`: one keep-alive HTTP connection asking every 20 ms, and a new
 * connection every 20 ms; prints what each saw.
 */
const TRAFFIC = `
const net = require('node:net');
const [ip, port, ms] = process.argv.slice(1);
const request = 'GET /hostname HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n';
const out = { held: { ok: 0, backends: {}, error: null }, fresh: { ok: 0, failed: 0, errors: {} } };
const held = net.connect(Number(port), ip);
let buffered = '';
held.on('data', (d) => {
  buffered += d;
  let m;
  while ((m = /\\r\\n\\r\\n/.exec(buffered))) {
    const len = Number(/content-length: (\\d+)/i.exec(buffered.slice(0, m.index))?.[1] ?? 0);
    const end = m.index + 4 + len;
    if (buffered.length < end) break;
    const body = buffered.slice(m.index + 4, end).trim();
    out.held.backends[body] = (out.held.backends[body] ?? 0) + 1;
    out.held.ok++;
    buffered = buffered.slice(end);
  }
});
held.on('error', (e) => (out.held.error = e.code ?? e.message));
held.on('close', () => (out.held.error ??= 'closed'));
const ask = setInterval(() => held.writable && held.write(request), 20);
const fresh = setInterval(() => {
  const s = net.connect(Number(port), ip, () => s.end(request));
  s.setTimeout(1000, () => s.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  let got = '';
  s.on('data', (d) => (got += d));
  s.on('error', (e) => { out.fresh.failed++; out.fresh.errors[e.code] = (out.fresh.errors[e.code] ?? 0) + 1; });
  s.on('close', (hadError) => { if (!hadError && got.startsWith('HTTP/1.1 200')) out.fresh.ok++; });
}, 20);
setTimeout(() => {
  clearInterval(ask);
  clearInterval(fresh);
  setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 1200);
}, Number(ms));
`;

describe('sluice agent restart (lab)', () => {
  const labName = `r${process.pid % 100000}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  let lab: Lab;

  const topologyNodes = () => lab.topology.nodes().map((n) => n.name);

  before(async () => {
    requireKernel();
    lab = await Lab.up({ files: [SEMANTICS], nodes: 2, proxy: 'sluice', stateDir, labName });
  });

  after(async () => {
    await Lab.down(stateDir, labName);
    rmSync(stateDir, { recursive: true, force: true });
    const netns = execFileSync('ip', ['netns', 'list']).toString();
    assert.equal(netns.includes(`sl-${labName}-`), false, 'no namespace of the lab is left');
    assert.equal(existsSync(`/sys/fs/cgroup/unified/sluice/lab-${labName}`), false);
    assert.equal(existsSync(`/sys/fs/bpf/sluice/lab-${labName}`), false, 'no pin is left');
  });

  it('service list reads back what the model says every node should do', () => {
    for (const node of topologyNodes()) {
      const plan = planForNode(lab.state, node);
      const fromModel = [...plan.frontends.values()]
        .map((f) => {
          const backends = plan.groups.get(f.group)?.backends ?? [];
          return `${f.id} ${serviceFlagNames(f.flags)} [${backends.map(backendName).sort().join(' ')}]`;
        })
        .sort();
      const fromMaps = listFrontends(readPinnedProgrammed(agentPinRoot(lab.topology, node)))
        .map((f) => {
          const backends = f.backends.map((b) => `${b.address}:${b.port}/${b.protocol}`);
          const id = `${f.address}:${f.port}/${f.protocol}/${f.scope}`;
          return `${id} ${f.type.join(',')} [${backends.sort().join(' ')}]`;
        })
        .sort();
      assert.deepEqual(fromMaps, fromModel, node);
      assert.ok(fromMaps.length > 10);
    }
  });

  it('kill -9 during traffic: connections survive, the restart adopts the pins without a write', async (t) => {
    const node = 'node-1'; // where the client pod runs: its socket LB serves the client
    const topology = lab.topology;
    const pinRoot = agentPinRoot(topology, node);
    const rr = lab.state.services.get(objectKey('default', 'rr'));
    assert.ok(rr);
    const before = dumpProgrammed(readPinnedProgrammed(pinRoot));

    // Watch the frontends from outside while the agent dies and comes back.
    const services = openPinnedMap(join(pinRoot, 'lb4_services'), lbMaps.lb4_services);
    const expected = new Map(
      services.lookupBatch().map(([k, v]) => [`${k.address}:${k.dport}/${k.proto}/${k.scope}`, v]),
    );
    const violations: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const now = new Map(
          services
            .lookupBatch()
            .map(([k, v]) => [`${k.address}:${k.dport}/${k.proto}/${k.scope}`, v]),
        );
        for (const [key, value] of expected) {
          const seen = now.get(key);
          if (!seen) violations.push(`${key} disappeared`);
          else if (seen.backend_count !== value.backend_count)
            violations.push(`${key} count ${value.backend_count} -> ${seen.backend_count}`);
        }
        await sleep(2);
      }
    })();

    const traffic = topology.exec(
      { pod: 'default/client' },
      [process.execPath, '-e', TRAFFIC, rr.clusterIP, '80', '6000'],
      { timeoutMs: 20_000 },
    );
    try {
      await sleep(1000);
      const agent = liveAgent(topology, node);
      assert.ok(agent, 'the agent runs');
      process.kill(agent.pid, 'SIGKILL');
      await sleep(1500); // no agent: traffic runs on the pinned maps alone
      assert.equal(liveAgent(topology, node), undefined, 'the agent is gone');

      const record = topology.nodes().find((n) => n.name === node);
      assert.ok(record);
      const restarted = startAgent(topology, stateDir, record);
      const digest = writtenClusterDigest(stateDir);
      const health = await waitProgrammed(topology, node, digest, restarted.log ?? '');
      assert.deepEqual(health.programmed?.ops, {}, 'adopted: not one map write');
      const status = await agentHealth(topology, node);
      assert.deepEqual(
        (status?.attachments as { outcome: string }[]).map((a) => a.outcome).sort(),
        ['replaced', 'replaced', 'updated', 'updated', 'updated', 'updated'],
        'links and filters adopted in place, none attached anew',
      );
    } finally {
      const result = JSON.parse((await traffic).stdout) as {
        held: { ok: number; backends: Record<string, number>; error: string | null };
        fresh: { ok: number; failed: number; errors: Record<string, number> };
      };
      watching = false;
      await watcher;
      services.close();
      t.diagnostic(
        `held connection: ${result.held.ok} answers; new connections: ${result.fresh.ok} ok, ${result.fresh.failed} failed`,
      );
      assert.equal(result.held.error, null, `the held connection broke: ${result.held.error}`);
      assert.ok(result.held.ok > 100, `the held connection kept answering (${result.held.ok})`);
      assert.equal(Object.keys(result.held.backends).length, 1, 'one backend for its whole life');
      assert.deepEqual(result.fresh.errors, {}, 'every new connection worked');
      assert.ok(result.fresh.ok > 100, `new connections kept working (${result.fresh.ok})`);
    }
    assert.deepEqual(violations, [], 'no frontend ever disappeared or changed its count');
    assert.equal(dumpProgrammed(readPinnedProgrammed(pinRoot)), before, 'the maps are unchanged');
  });
});
