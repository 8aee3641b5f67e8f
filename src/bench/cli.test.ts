/**
 * End to end: the compiled CLI as a child process, as a user runs it. Values are never
 * asserted (no timed assertions): only that every (mode, metric) got a number, and that
 * Ctrl-C stops cleanly.
 */
import assert from 'node:assert/strict';

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireKernel } from '../testing/privileges.js';
import { RESULTS_FILE, readResults } from './results.js';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

interface Exit {
  code: number | null;
  stderr: string;
}

/** Runs the CLI; `onStderr` may signal the child when it sees a line it waits for. */
function sluice(args: string[], onStderr?: (text: string, pid: number) => void): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (child.pid !== undefined) onStderr?.(stderr, child.pid);
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  });
}

describe('sluice bench (CLI)', () => {
  before(requireKernel);
  const dirs: string[] = [];
  const tmp = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('bench maps --quick --runs 1 writes a numeric median for every (mode, metric)', async () => {
    const out = tmp();
    const { code, stderr } = await sluice([
      'bench',
      'maps',
      '--quick',
      '--runs',
      '1',
      '--out',
      out,
    ]);
    assert.equal(code, 0, stderr);
    const results = readResults(out);
    for (const mode of ['c-libbpf', 'sluice-ts']) {
      for (const metric of ['update-rate', 'batch-update-rate', 'lookup-ns']) {
        const row = results.results.find((r) => r.mode === mode && r.metric === metric);
        assert.ok(row, `no row for ${mode} ${metric}`);
        assert.equal(row.scenario, 'maps');
        assert.equal(row.runs, 1);
        assert.equal(typeof row.params.entries, 'number');
        for (const v of [row.median, row.min, row.max]) assert.ok(Number.isFinite(v), `${v}`);
      }
    }
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /## maps/);
  });

  it('bench connect --quick --services 1,20 --runs 1: a number for every (scale, mode, metric), labs removed', async () => {
    const out = tmp();
    const { code, stderr } = await sluice([
      'bench',
      'connect',
      '--quick',
      '--services',
      '1,20',
      '--runs',
      '1',
      '--out',
      out,
    ]);
    assert.equal(code, 0, stderr);
    const results = readResults(out);
    for (const services of [1, 20]) {
      for (const mode of ['iptables', 'nftables', 'sluice-socket', 'sluice-tc', 'direct']) {
        for (const metric of ['connect-rate', 'connect-latency-p50', 'connect-latency-p99']) {
          const row = results.results.find(
            (r) => r.mode === mode && r.metric === metric && r.params.services === services,
          );
          assert.ok(row, `no row for ${services} services, ${mode} ${metric}`);
          assert.ok(Number.isFinite(row.median) && row.median > 0, `${row.median}`);
        }
      }
    }
    const left = execFileSync('ip', ['netns', 'list']).toString();
    assert.doesNotMatch(left, /^sl-b[insd][a-z0-9]*-/m, 'the benchmark labs are gone');
  });

  it('bench prog-cost --quick --runs 1: ns/packet for every case of the TC program', async () => {
    const out = tmp();
    const { code, stderr } = await sluice([
      'bench',
      'prog-cost',
      '--quick',
      '--runs',
      '1',
      '--out',
      out,
    ]);
    assert.equal(code, 0, stderr);
    const results = readResults(out);
    for (const c of ['hit', 'miss', 'ct-hit', 'empty']) {
      const row = results.results.find((r) => r.params.case === c && r.metric === 'ns-per-packet');
      assert.ok(row, `no row for case ${c}`);
      assert.equal(row.mode, 'sluice-tc');
      assert.ok(Number.isFinite(row.median) && row.median > 0, `${row.median}`);
    }
  });

  it('bench control-plane --quick --runs 1: a number for every (services, mode, metric), nothing left', async () => {
    const out = tmp();
    const { code, stderr } = await sluice([
      'bench',
      'control-plane',
      '--quick',
      '--runs',
      '1',
      '--out',
      out,
    ]);
    assert.equal(code, 0, stderr);
    const results = readResults(out);
    for (const services of [100, 1000]) {
      for (const mode of ['sluice-ts', 'iptables', 'nftables']) {
        for (const metric of ['program-time', 'change-time']) {
          const row = results.results.find(
            (r) => r.mode === mode && r.metric === metric && r.params.services === services,
          );
          assert.ok(row, `no row for ${services} services, ${mode} ${metric}`);
          assert.equal(row.scenario, 'control-plane');
          assert.equal(row.runs, 1);
          for (const v of [row.median, row.min, row.max]) assert.ok(Number.isFinite(v), `${v}`);
        }
      }
    }
    const left = execFileSync('ip', ['netns', 'list']).toString();
    assert.doesNotMatch(left, /^sl-cp-/m, 'the scratch namespaces are gone');
    const pins = readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('sl-cp-'));
    assert.deepEqual(pins, [], 'the pin directories are gone');
  });

  it('stops on Ctrl-C: exit 130, the C child gone, nothing written', async () => {
    const out = tmp();
    let childPid: number | undefined;
    let sent = false;
    // Full size, so the C child is still running when the interrupt arrives.
    const { code, stderr } = await sluice(
      ['bench', 'maps', '--runs', '1', '--out', out],
      (text, pid) => {
        const m = /c-libbpf\] \(pid (\d+)\)/.exec(text);
        if (m && !sent) {
          sent = true;
          childPid = Number(m[1]);
          process.kill(pid, 'SIGINT');
        }
      },
    );
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted, cleaned up, nothing written/);
    assert.ok(childPid);
    assert.equal(existsSync(`/proc/${childPid}`), false, 'map_bench still running');
    assert.equal(existsSync(join(out, RESULTS_FILE)), false);
  });

  it('stops on SIGTERM while labs come up: exit 143, every lab of the run removed', async () => {
    const out = tmp();
    let sent = false;
    const { code, stderr } = await sluice(
      ['bench', 'churn', '--quick', '--out', out],
      (text, pid) => {
        // The iptables lab is up and the nftables lab is on its way.
        if (!sent && /bringing up the nftables lab/.test(text)) {
          sent = true;
          process.kill(pid, 'SIGTERM');
        }
      },
    );
    assert.equal(code, 143, stderr);
    assert.match(stderr, /interrupted, cleaned up, nothing written/);
    assert.equal(existsSync(join(out, RESULTS_FILE)), false);
    const left = execFileSync('ip', ['netns', 'list']).toString();
    assert.doesNotMatch(left, /^sl-h[ins][a-z0-9]*-/m, 'the churn labs are gone');
  });
});
