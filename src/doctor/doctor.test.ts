import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { requireKernel } from '../testing/privileges.js';
import type { CheckResult } from './checks.js';
import { CHECKS } from './checks.js';
import { listNetns } from './netns.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

function doctor(...args: string[]): { status: number | null; stdout: string; pid: number } {
  const r = spawnSync(process.execPath, [main, 'doctor', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.error, undefined);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return { status: r.status, stdout: r.stdout, pid: r.pid };
}

describe('sluice doctor on this machine', () => {
  before(requireKernel);

  it('--json reports every capability, with BTF, bpffs, TC and native XDP OK', () => {
    const { status, stdout, pid } = doctor('--json');
    const results = JSON.parse(stdout) as CheckResult[];
    assert.deepEqual(
      results.map((r) => r.name),
      CHECKS.map((c) => c.name),
    );
    for (const r of results) {
      assert.deepEqual(Object.keys(r), ['name', 'status', 'required', 'detail', 'fix']);
      assert.ok(['OK', 'MISSING', 'WARN'].includes(r.status), r.status);
      assert.equal(r.fix === null, r.status === 'OK', `${r.name}: a fix exactly when not OK`);
    }
    const byName = new Map(results.map((r) => [r.name, r]));
    for (const name of ['root', 'btf', 'bpffs', 'tc-bpf', 'xdp-native-veth']) {
      assert.equal(byName.get(name)?.status, 'OK', `${name}: ${byName.get(name)?.detail}`);
    }
    const missing = results.some((r) => r.required && r.status === 'MISSING');
    assert.equal(status, missing ? 1 : 0);
    assert.ok(!listNetns().includes(`sl-doctor-${pid}`), 'the scratch namespace is gone');
  });

  it('prints one line per capability, then a summary', () => {
    const { status, stdout, pid } = doctor();
    const lines = stdout.trimEnd().split('\n');
    const summary = lines.pop();
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, CHECKS.length);
    for (const [i, line] of lines.entries()) {
      assert.match(line, new RegExp(`^(OK|MISSING|WARN) +${CHECKS[i]?.name} `));
    }
    assert.match(summary ?? '', status === 0 ? /^sluice can run here/ : /^sluice cannot run here/);
    assert.ok(!listNetns().includes(`sl-doctor-${pid}`));
  });
});
