import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireKernel } from '../testing/privileges.js';
import { Lab } from './lab.js';
import { runProbe } from './probe/probe.js';

describe('lab lifecycle', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  const labName = `l${process.pid % 100000}`;
  before(requireKernel);
  after(async () => {
    await Lab.down(stateDir, labName);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('refuses a second lab in the same place, and a lab after down starts from empty proxy tables', async () => {
    const extra = join(stateDir, 'extra.yaml');
    writeFileSync(
      extra,
      'apiVersion: v1\nkind: Service\nmetadata: { name: extra }\nspec:\n  selector: { app: web }\n  ports: [{ port: 81, targetPort: http }]\n',
    );
    let lab = await Lab.up({ files: [], nodes: 2, proxy: 'nftables', stateDir, labName });
    await assert.rejects(
      Lab.up({ files: [], nodes: 2, proxy: 'nftables', stateDir, labName }),
      /a lab is already up/,
    );
    await lab.apply([extra]);
    await Lab.open(stateDir).delete([extra]); // leaves stale chains for the next sync to delete
    await Lab.down(stateDir, labName);

    lab = await Lab.up({ files: [], nodes: 2, proxy: 'nftables', stateDir, labName });
    const r = await runProbe(lab.state, lab.topology, 'default/client', 'svc/default/web', {
      count: 3,
      timeoutMs: 2000,
    });
    assert.ok(r.ok, JSON.stringify(r.attempts));
  });
});
