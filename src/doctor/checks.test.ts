import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Check, DoctorContext } from './checks.js';
import {
  CHECKS,
  ROOT_FIX,
  cgroup2Finding,
  clangFinding,
  compareVersions,
  findCgroup2Mounts,
  jitFinding,
  libbpfFinding,
  nodeFinding,
  parseClangVersion,
  parseCongestionControls,
  parseVersion,
  runCheck,
  runDoctor,
} from './checks.js';

describe('version parsing', () => {
  it('reads clang versions from what the distributions print', () => {
    const cases: [string, string | null][] = [
      ['Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu\n', '14.0.6'],
      ['Ubuntu clang version 14.0.0-1ubuntu1.1\nTarget: x86_64-pc-linux-gnu', '14.0.0'],
      ['clang version 18.1.8 (Fedora 18.1.8-1.fc40)', '18.1.8'],
      ['Homebrew clang version 17.0.6', '17.0.6'],
      ['Apple clang version 15.0.0 (clang-1500.1.0.2.5)', '15.0.0'],
      ['clang version 9.0.1-12', '9.0.1'],
      ['clang version 19', '19'],
      ['warning: unknown env\nclang version 16.0.0', '16.0.0'],
      ['gcc (Debian 12.2.0-14) 12.2.0', null],
      ['', null],
      ['clang version x.y', null],
    ];
    for (const [output, version] of cases) assert.equal(parseClangVersion(output), version, output);
  });

  it('parses versions and compares them numerically, not as text', () => {
    assert.deepEqual(parseVersion('v20.20.2'), [20, 20, 2]);
    assert.deepEqual(parseVersion('14.0.6-1ubuntu1'), [14, 0, 6]);
    assert.equal(parseVersion('next'), null);
    assert.equal(parseVersion(''), null);
    assert.equal(compareVersions([9], [11]), -1, "'9' sorts after '11' as text");
    assert.equal(compareVersions([10, 9], [10, 10]), -1);
    assert.equal(compareVersions([11], [11, 0, 0]), 0);
    assert.equal(compareVersions([1, 1], [1, 0]), 1);
  });

  it('judges clang, libbpf and Node.js against their minimum versions', () => {
    assert.deepEqual(clangFinding('Debian clang version 14.0.6'), {
      ok: true,
      detail: 'clang 14.0.6',
    });
    assert.equal(clangFinding('clang version 11.0.0').ok, true);
    const old = clangFinding('Ubuntu clang version 10.0.0-4ubuntu1');
    assert.equal(old.ok, false);
    assert.match(old.detail, /clang 10\.0\.0 is older than 11/);
    const none = clangFinding(null, 'clang-15');
    assert.equal(none.ok, false);
    assert.match(none.detail, /clang-15 not found/);
    assert.ok(!none.ok && /install clang 11 or newer/.test(none.fix));
    const odd = clangFinding('something else entirely\nsecond line');
    assert.ok(!odd.ok);
    assert.match(odd.detail, /cannot read a version from 'something else entirely'$/);

    assert.equal(libbpfFinding(1, 0).ok, true);
    assert.equal(libbpfFinding(1, 1).detail, 'libbpf 1.1');
    assert.equal(libbpfFinding(0, 8).ok, false);
    assert.equal(nodeFinding('20.0.0').ok, true);
    assert.equal(nodeFinding('v22.1.0').detail, 'Node.js 22.1.0');
    assert.equal(nodeFinding('18.19.1').ok, false);
    assert.equal(nodeFinding('garbage').ok, false);
  });
});

describe('system facts parsing', () => {
  it('reads the JIT switch', () => {
    assert.equal(jitFinding('1\n').ok, true);
    assert.match(jitFinding('2').detail, /debug/);
    const off = jitFinding('0\n');
    assert.ok(!off.ok && off.fix === 'run sysctl -w net.core.bpf_jit_enable=1');
    assert.equal(jitFinding('').ok, false);
    assert.equal(jitFinding('10').ok, false);
    const none = jitFinding(null);
    assert.ok(!none.ok && /CONFIG_BPF_JIT/.test(none.fix));
  });

  it('finds cgroup2 in hybrid, unified and missing layouts', () => {
    const hybrid = [
      'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
      'bpf /sys/fs/bpf bpf rw,relatime 0 0',
    ].join('\n');
    assert.deepEqual(findCgroup2Mounts(hybrid), ['/sys/fs/cgroup/unified']);
    assert.deepEqual(cgroup2Finding(hybrid), {
      ok: true,
      detail: '/sys/fs/cgroup/unified (hybrid hierarchy: cgroup v1 controllers too)',
    });
    const unified = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n';
    assert.equal(cgroup2Finding(unified).detail, '/sys/fs/cgroup (unified)');
    // The device field may read "cgroup2" while the type is something else, and vice versa.
    assert.deepEqual(
      findCgroup2Mounts('cgroup2 /mnt/x tmpfs rw 0 0\nnone /mnt/my\\040cg cgroup2 rw 0 0'),
      ['/mnt/my cg'],
    );
    const none = cgroup2Finding('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n\n');
    assert.ok(!none.ok && /mount -t cgroup2/.test(none.fix));
    assert.equal(cgroup2Finding('').ok, false);
  });

  it('splits the congestion control list', () => {
    assert.deepEqual(parseCongestionControls('reno bbr cubic\n'), ['reno', 'bbr', 'cubic']);
    assert.deepEqual(parseCongestionControls('  \n'), []);
    assert.ok(!parseCongestionControls('reno bbr2 cubic').includes('bbr'), 'bbr2 is not bbr');
  });
});

const noProbe = (): never => {
  throw new Error('the attach test must not run here');
};
const ctx = (root: boolean): DoctorContext => ({ root, netnsProbe: noProbe });

describe('check runner', () => {
  it('reports root-only checks as MISSING "run as root (sudo)" without running them', async () => {
    const results = await runDoctor({ root: false, netnsProbe: noProbe });
    assert.deepEqual(
      results.map((r) => r.name),
      CHECKS.map((c) => c.name),
    );
    for (const check of CHECKS.filter((c) => c.needsRoot || c.name === 'root')) {
      const r = results.find((x) => x.name === check.name);
      assert.equal(r?.status, 'MISSING', check.name);
      assert.equal(r?.fix, ROOT_FIX, check.name);
    }
  });

  it('turns a throwing check into MISSING (WARN if optional) with the message, no stack', async () => {
    const boom = (message: string): never => {
      throw new Error(message);
    };
    const required: Check = {
      name: 'x',
      required: true,
      needsRoot: false,
      run: () => boom('first line\n    at somewhere (file.js:1:1)'),
    };
    const r = await runCheck(required, ctx(true));
    assert.equal(r.status, 'MISSING');
    assert.equal(r.detail, 'check failed: first line');
    assert.ok(r.fix && !r.fix.includes('\n'));
    const optional: Check = {
      ...required,
      required: false,
      run: () => Promise.reject(new Error('')),
    };
    const o = await runCheck(optional, ctx(true));
    assert.equal(o.status, 'WARN');
    assert.equal(o.detail, 'check failed: unknown error');
    // Something that is not an Error at all.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    const odd: Check = { ...required, run: () => Promise.reject(42) };
    assert.equal((await runCheck(odd, ctx(true))).detail, 'check failed: 42');
  });

  it('maps findings to statuses and keeps every field on one line', async () => {
    const mk = (required: boolean, ok: boolean): Check => ({
      name: 'c',
      required,
      needsRoot: false,
      run: () => (ok ? { ok, detail: 'a\nb' } : { ok, detail: 'why\n  more', fix: 'do\r\nthis' }),
    });
    assert.deepEqual(await runCheck(mk(true, true), ctx(false)), {
      name: 'c',
      status: 'OK',
      required: true,
      detail: 'a b',
      fix: null,
    });
    const missing = await runCheck(mk(true, false), ctx(false));
    assert.equal(missing.status, 'MISSING');
    assert.equal(missing.detail, 'why more');
    assert.equal(missing.fix, 'do this');
    assert.equal((await runCheck(mk(false, false), ctx(false))).status, 'WARN');
  });

  it('runs the shared attach test at most once', async () => {
    let runs = 0;
    const netnsProbe = () => {
      runs++;
      return Promise.resolve({
        ok: true as const,
        xdpNative: { ok: false, error: 'bpf_xdp_attach(x): EOPNOTSUPP' },
        xdpGeneric: { ok: true },
        tcIngress: { ok: true },
        tcEgress: { ok: true },
      });
    };
    const reader = (name: string): Check => ({
      name,
      required: true,
      needsRoot: true,
      run: async (c) => {
        const r = await c.netnsProbe();
        return r.xdpNative.ok ? { ok: true, detail: '' } : { ok: false, detail: 'no', fix: 'f' };
      },
    });
    const results = await runDoctor({ root: true, netnsProbe, checks: [reader('a'), reader('b')] });
    assert.equal(runs, 1);
    assert.deepEqual(
      results.map((r) => r.status),
      ['MISSING', 'MISSING'],
    );
  });
});
