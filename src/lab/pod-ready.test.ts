import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { objectKey } from '../model/index.js';
import { requireKernel } from '../testing/privileges.js';
import { Lab } from './lab.js';
import { runProbe } from './probe/probe.js';
import type { ProxyMode } from './proxy.js';

/** Which web backends answer 30 probes through the ClusterIP. */
async function answering(lab: Lab): Promise<string[]> {
  const r = await runProbe(lab.state, lab.topology, 'default/client', 'svc/default/web', {
    count: 30,
    timeoutMs: 2000,
  });
  assert.ok(r.ok, JSON.stringify(r.attempts));
  return Object.keys(r.backends).sort();
}

for (const proxy of ['iptables', 'nftables', 'sluice'] as ProxyMode[]) {
  describe(`Lab.setPodReady (${proxy})`, () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-ready-'));
    const labName = `r${proxy[0]}${process.pid % 100000}`;
    before(requireKernel);
    after(async () => {
      await Lab.down(stateDir, labName);
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('takes an unready pod out of its service incrementally and puts it back', async () => {
      const lab = await Lab.up({
        files: [],
        nodes: 1,
        proxy,
        stateDir,
        labName,
        ...(proxy === 'iptables' ? { iptablesBackend: 'legacy' as const } : {}),
      });
      const web = [...lab.state.pods.values()]
        .filter((p) => p.labels.app === 'web')
        .map((p) => p.name)
        .sort();
      assert.equal(web.length, 3);
      const [gone] = web;
      assert.ok(gone);
      const key = objectKey('default', gone);

      assert.deepEqual((await lab.setPodReady(key, false)).services, ['default/web']);
      assert.ok(!(await answering(lab)).includes(gone));
      // Recorded: another command sees the change.
      assert.equal(Lab.open(stateDir).state.pods.get(key)?.conditions.ready, false);
      // Nothing changes when the pod already has that readiness.
      assert.deepEqual((await lab.setPodReady(key, false)).services, []);

      // Unsaved changes build on each other (also in a Lab that has not written the record
      // yet), and reach the record with save().
      const opened = Lab.open(stateDir);
      assert.deepEqual((await opened.setPodReady(key, true, { save: false })).services, [
        'default/web',
      ]);
      assert.deepEqual((await opened.setPodReady(key, false, { save: false })).services, [
        'default/web',
      ]);
      assert.deepEqual((await opened.setPodReady(key, true, { save: false })).services, [
        'default/web',
      ]);
      assert.equal(Lab.open(stateDir).state.pods.get(key)?.conditions.ready, false);
      await opened.save();
      assert.equal(Lab.open(stateDir).state.pods.get(key)?.conditions.ready, true);
      // The full converge path afterwards still agrees with what the partial syncs left.
      await Lab.open(stateDir).setPod(objectKey('default', web[1] ?? ''), 'unready');
      const back = await lab.setPodReady(objectKey('default', web[1] ?? ''), true);
      assert.deepEqual(back.services, ['default/web']);
      assert.deepEqual(await answering(lab), web);
    });
  });
}
