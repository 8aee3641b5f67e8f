/**
 * `sluice bench --quick` end to end, as the test command runs it once: every registered
 * scenario (the registry, so scenarios added later are covered too) must produce at least one
 * number, and the report and charts must be written from results.json. Values are never checked
 * (no timed assertions), and neither is the duration (--quick is sized to finish in under three
 * minutes on a 2-CPU machine, which the progress lines show).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireKernel } from '../testing/privileges.js';
import { chartSpecs } from './charts.js';
import { readResults } from './results.js';
import { scenarioNames } from './scenarios/index.js';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

function sluice(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  });
}

describe('sluice bench --quick', () => {
  before(requireKernel);
  let out = '';
  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('gives every registered scenario at least one number, with report and charts', async () => {
    out = mkdtempSync(join(tmpdir(), 'sluice-bench-quick-'));
    const { code, stderr } = await sluice(['bench', '--quick', '--out', out]);
    assert.equal(code, 0, stderr);
    const results = readResults(out);
    for (const name of scenarioNames()) {
      const rows = results.results.filter((r) => r.scenario === name);
      assert.ok(rows.length > 0, `scenario ${name} produced no rows`);
      assert.ok(
        rows.some((r) => [r.median, r.min, r.max].every(Number.isFinite)),
        `scenario ${name} produced no number`,
      );
    }
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    for (const name of scenarioNames()) assert.match(report, new RegExp(`^## ${name}$`, 'm'));
    const charts = chartSpecs(results);
    assert.ok(charts.length > 0);
    for (const c of charts) {
      assert.ok(existsSync(join(out, c.file)), `${c.file} not written`);
      assert.ok(report.includes(`](${c.file})`), `${c.file} not linked from report.md`);
    }
    const svgs = readdirSync(out).filter((f) => f.endsWith('.svg'));
    assert.equal(svgs.length, charts.length);
    assert.match(readFileSync(join(out, svgs[0] ?? ''), 'utf8'), /^<svg /);
  });
});
