/**
 * The agent in this process against the real kernel: socket LB attached to a throwaway cgroup
 * under <cgroup2>/sluice/, maps pinned under /sys/fs/bpf/sluice/test-*, the source a temporary
 * copy of the golden test's manifests. (TC needs a network namespace of its own: the CLI test
 * and the lab cover it.) Everything is removed in a finally.
 */
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ManifestsSource } from '../sources/manifests.js';
import { withTestCgroup } from '../testing/cgroup.js';
import { requireKernel } from '../testing/privileges.js';
import { Agent } from './agent.js';
import type { AgentStatus } from './agent.js';
import { resolveConfig } from './config.js';
import { dumpProgrammed } from './dump.js';
import { listFrontends, readPinnedProgrammed } from './inspect.js';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), '../../src/agent/testdata');

function capture(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('agent (kernel)', () => {
  it('programs the golden maps, skips bad objects, restarts without a write, follows changes', async () => {
    requireKernel();
    const pinBase = `/sys/fs/bpf/sluice/test-agent-${process.pid}`;
    const pinRoot = join(pinBase, 'node-0');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-'));
    cpSync(join(TESTDATA, 'cluster/manifests'), dir, { recursive: true });
    try {
      await withTestCgroup(async (cgroupPath) => {
        const config = resolveConfig(
          {
            socketLB: { cgroupPath },
            perPacketLB: { enabled: false },
            pinRoot,
            health: { address: `127.0.0.1:${20000 + (process.pid % 20000)}` },
          },
          'node-0',
        );
        const started: Agent[] = [];
        const start = () => {
          const log = capture();
          const source = new ManifestsSource(dir, { debounceMs: 20, logger: log.logger });
          const agent = new Agent({ nodeName: 'node-0', config, source, logger: log.logger });
          started.push(agent);
          const running = agent.run();
          return { agent, running, log, status: (): AgentStatus => agent.snapshotStatus() };
        };

        try {
          // First start: from nothing to the golden dump.
          const first = start();
          await until('ready', () => first.status().ready);
          const golden = readFileSync(join(TESTDATA, 'cluster/node-0.golden'), 'utf8');
          assert.equal(dumpProgrammed(readPinnedProgrammed(pinRoot)), golden);
          const skips = first.log.lines.filter((l) => String(l.msg).startsWith('skipped '));
          assert.equal(skips.length, 7, 'one line per bad object');
          assert.deepEqual(first.status().skipped, { current: 7, total: 7 });
          assert.deepEqual(
            first.status().attachments.map((a) => a.outcome),
            ['attached', 'attached', 'attached', 'attached'],
          );
          const rr = listFrontends(readPinnedProgrammed(pinRoot)).find(
            (f) => f.address === '198.19.0.10',
          );
          assert.deepEqual(
            rr?.backends.map((b) => `${b.address}:${b.port} ${b.state}${b.local ? ' local' : ''}`),
            ['198.18.16.2:8080 active local', '198.18.17.2:8080 active'],
          );
          await first.agent.stop();
          await first.running;
          assert.ok(
            existsSync(join(pinRoot, 'links', 'cgroup_sock4_connect')),
            'links stay pinned',
          );
          assert.equal(dumpProgrammed(readPinnedProgrammed(pinRoot)), golden, 'maps stay');

          // Restart: adopts the pins, writes nothing, updates the links in place.
          const second = start();
          await until('ready', () => second.status().ready);
          assert.deepEqual(second.status().programmed?.ops, {});
          assert.deepEqual(
            second.status().attachments.map((a) => a.outcome),
            ['updated', 'updated', 'updated', 'updated'],
          );
          assert.equal(dumpProgrammed(readPinnedProgrammed(pinRoot)), golden);

          // One endpoint more for rr (a second slice): three writes.
          const extra = join(dir, '21-extra.yaml');
          writeFileSync(
            extra,
            'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: rr-extra, labels: { kubernetes.io/service-name: rr } }\naddressType: IPv4\nports: [{ name: http, port: 8080, protocol: TCP }]\nendpoints: [{ addresses: [198.18.17.4], nodeName: node-1 }]\n',
          );
          await until('generation 2', () => second.status().programmed?.generation === 2);
          assert.deepEqual(second.status().programmed?.ops, {
            'lb4_backends.update': 1,
            'lb_slots.update': 1,
            'lb4_services.update': 1,
          });
          await second.agent.stop();
          await second.running;
        } finally {
          for (const agent of started) await agent.stop();
          // The links keep the cgroup busy until their pins go.
          rmSync(pinBase, { recursive: true, force: true });
        }
      });
    } finally {
      rmSync(pinBase, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(existsSync(pinBase), false);
    assert.ok(
      !readdirSync('/sys/fs/bpf/sluice').some((n) => n.startsWith(`test-agent-${process.pid}`)),
    );
  });
});
