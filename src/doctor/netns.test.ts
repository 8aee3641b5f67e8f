import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { requireKernel } from '../testing/privileges.js';
import { NetnsProbeFailure, listNetns, parseProbeReport, runNetnsProbe } from './netns.js';

/** Whether a process exists and is not a zombie (a killed orphan is one until init reaps it). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('attach test report parsing', () => {
  it('accepts only a well-formed last line', () => {
    const good = {
      ok: true,
      xdpNative: { ok: true },
      xdpGeneric: null,
      tcIngress: { ok: false, error: 'E' },
      tcEgress: { ok: true },
    };
    assert.deepEqual(parseProbeReport(`noise\n${JSON.stringify(good)}\n`), good);
    assert.deepEqual(parseProbeReport('{"ok":false,"error":"no object"}'), {
      ok: false,
      error: 'no object',
    });
    for (const bad of [
      '',
      'not json',
      'null',
      '42',
      '{"ok":false}',
      '{"ok":"yes"}',
      JSON.stringify({ ...good, tcEgress: undefined }),
      JSON.stringify({ ...good, xdpNative: { ok: 1 } }),
      JSON.stringify({ ...good, xdpGeneric: 'x' }),
      `${JSON.stringify(good)}\ntrailing`,
    ]) {
      assert.equal(parseProbeReport(bad), null, bad);
    }
  });
});

describe('attach test in a scratch namespace (real kernel)', () => {
  const own = `sl-doctor-${process.pid}`;
  let dir = '';
  before(() => {
    requireKernel();
    dir = mkdtempSync(join(tmpdir(), 'sl-doctor-test-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.ok(!listNetns().includes(own), `${own} was left behind`);
  });

  function script(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, body);
    return path;
  }

  it('attaches XDP native and TC ingress/egress on a veth, then removes the namespace', async () => {
    const result = await runNetnsProbe();
    assert.deepEqual(result, {
      ok: true,
      xdpNative: { ok: true },
      xdpGeneric: null,
      tcIngress: { ok: true },
      tcEgress: { ok: true },
    });
    assert.ok(!listNetns().includes(own));
  });

  it('removes the namespace when the test process fails, prints garbage or reports an error', async () => {
    const cases: [string, RegExp][] = [
      [join(dir, 'does-not-exist.js'), /ip netns exec/],
      [script('garbage.mjs', 'console.log("hello")'), /printed no report: hello/],
      [
        script('fails.mjs', 'console.log(JSON.stringify({ok:false,error:"no object"}))'),
        /failed: no object/,
      ],
      [script('exits.mjs', 'process.exit(3)'), /ip netns exec/],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(runNetnsProbe({ script: path }), (error: unknown) => {
        assert.ok(error instanceof NetnsProbeFailure, String(error));
        assert.match(error.message, message);
        assert.ok(error.fix.length > 0);
        return true;
      });
      assert.ok(!listNetns().includes(own), `${own} left after ${path}`);
    }
  });

  it('kills a test process that hangs, and still removes the namespace', async () => {
    const hang = script('hang.mjs', 'setInterval(() => {}, 1000)');
    await assert.rejects(runNetnsProbe({ script: hang, timeoutMs: 1000 }), /killed/);
    assert.ok(!listNetns().includes(own));
  });

  it('runs the test process inside the namespace it made, never in the root one', async () => {
    const where = script(
      'where.mjs',
      `import { execFileSync } from 'node:child_process';
       const ns = execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' });
       const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
       console.log(JSON.stringify({ ok: false, error: ns.trim() + ' ' + links.trim().split('\\n').length }));`,
    );
    // The script reports as an error on purpose, so the rejection carries what it saw: the
    // namespace's name and its three links (lo and the veth pair), not the machine's.
    await assert.rejects(runNetnsProbe({ script: where }), new RegExp(`failed: ${own} 3$`));
  });

  it('on SIGTERM ends the test process and removes the namespace, then dies of the signal', async () => {
    const ready = join(dir, 'ready');
    const hang = script(
      'hang-ready.mjs',
      `import { writeFileSync } from 'node:fs';
       writeFileSync(${JSON.stringify(ready)}, String(process.pid));
       setInterval(() => {}, 1000);`,
    );
    const netnsModule = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'netns.js'));
    const driver = script(
      'driver.mjs',
      `import { runNetnsProbe } from ${JSON.stringify(netnsModule.href)};
       await runNetnsProbe({ script: ${JSON.stringify(hang)} });`,
    );
    const child = spawn(process.execPath, [driver], { stdio: 'ignore' });
    const exited = once(child, 'exit');
    const ns = `sl-doctor-${child.pid}`;
    let probePid = 0;
    try {
      while (!existsSync(ready) && child.exitCode === null) await delay(50);
      assert.ok(existsSync(ready), 'the test process started inside the namespace');
      probePid = Number(readFileSync(ready, 'utf8'));
      child.kill('SIGTERM');
      const [, signal] = (await exited) as [number | null, NodeJS.Signals | null];
      assert.equal(signal, 'SIGTERM');
      assert.ok(!listNetns().includes(ns), `${ns} was left behind`);
      while (isAlive(probePid)) await delay(50); // it was sent SIGKILL: this ends
    } finally {
      if (listNetns().includes(ns)) execFileSync('ip', ['netns', 'del', ns]);
      if (probePid && isAlive(probePid)) process.kill(probePid, 'SIGKILL');
    }
  });

  it('deletes sl-doctor namespaces left by a doctor that no longer runs', async () => {
    const dead = spawnSync('true').pid;
    const stale = `sl-doctor-${dead}`;
    execFileSync('ip', ['netns', 'add', stale]);
    try {
      await runNetnsProbe();
      assert.ok(!listNetns().includes(stale), `${stale} was not reaped`);
    } finally {
      if (listNetns().includes(stale)) execFileSync('ip', ['netns', 'del', stale]);
    }
  });
});
