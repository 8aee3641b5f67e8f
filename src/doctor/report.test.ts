import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResult } from './checks.js';
import { exitCode, formatJson, formatLine, formatText, summary } from './report.js';

const ok: CheckResult = { name: 'btf', status: 'OK', required: true, detail: '5.3 MiB', fix: null };
const missing: CheckResult = {
  name: 'bpf-jit',
  status: 'MISSING',
  required: true,
  detail: 'JIT disabled',
  fix: 'run sysctl -w net.core.bpf_jit_enable=1',
};
const warn: CheckResult = {
  name: 'bbr',
  status: 'WARN',
  required: false,
  detail: 'not available',
  fix: 'modprobe tcp_bbr',
};

describe('text report', () => {
  it('puts status, name, detail and (when not OK) the fix on one line', () => {
    assert.equal(formatLine(ok), 'OK       btf  5.3 MiB');
    assert.equal(
      formatLine(missing),
      'MISSING  bpf-jit  JIT disabled; fix: run sysctl -w net.core.bpf_jit_enable=1',
    );
    assert.equal(formatLine(warn, 7), 'WARN     bbr      not available; fix: modprobe tcp_bbr');
  });

  it('aligns names, never breaks a line, and ends with a summary', () => {
    const multiline: CheckResult = {
      ...missing,
      detail: 'bad\nverifier log\n  line 2',
      fix: 'a\nb',
    };
    const text = formatText([ok, multiline, warn]);
    const lines = text.split('\n');
    assert.equal(lines.at(-1), '', 'ends with a newline');
    assert.deepEqual(lines.slice(0, 3), [
      'OK       btf      5.3 MiB',
      'MISSING  bpf-jit  bad verifier log line 2; fix: a b',
      'WARN     bbr      not available; fix: modprobe tcp_bbr',
    ]);
    assert.equal(lines[3], '');
    assert.match(
      lines[4] ?? '',
      /required capability is missing: bpf-jit \(1 OK, 1 WARN, 1 MISSING\)/,
    );
  });

  it('handles an empty detail and an empty result list', () => {
    assert.equal(formatLine({ ...ok, detail: '' }), 'OK       btf');
    assert.equal(formatText([]), '\nsluice can run here (0 OK, 0 WARN, 0 MISSING).\n');
  });
});

describe('exit status and summary', () => {
  it('fails only on a missing required capability', () => {
    assert.equal(exitCode([ok, warn]), 0);
    assert.equal(exitCode([ok, missing]), 1);
    assert.equal(exitCode([]), 0);
    // An optional check that failed unexpectedly is not a reason to fail.
    assert.equal(exitCode([{ ...warn, status: 'MISSING' }]), 0);
    assert.match(summary([ok, warn]), /^sluice can run here/);
    assert.match(
      summary([missing, { ...missing, name: 'btf' }]),
      /capabilities are missing: bpf-jit, btf/,
    );
  });
});

describe('JSON report', () => {
  it('is an array of {name, status, required, detail, fix} and nothing else', () => {
    const extra = { ...ok, stack: 'Error: x\n at y' } as CheckResult;
    const parsed = JSON.parse(formatJson([extra, missing, warn])) as Record<string, unknown>[];
    assert.deepEqual(parsed, [ok, missing, warn]);
    for (const entry of parsed) {
      assert.deepEqual(Object.keys(entry), ['name', 'status', 'required', 'detail', 'fix']);
    }
    assert.equal(formatJson([]), '[]\n');
  });
});
