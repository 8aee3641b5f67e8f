import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
const sluice = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

describe('sluice agent (command line)', () => {
  it('refuses an unknown source, exit 1', () => {
    const r = sluice('agent', '--node', 'n', '--source', 'etcd');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--source etcd: expected manifests:DIR or kubernetes/);
  });

  it('takes --source kubernetes, and checks the config before touching anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
    try {
      const config = join(dir, 'agent.yaml');
      writeFileSync(config, `pinRoot: ${join(dir, 'pins')}\nnodePortRange: 1-2-3\n`);
      const r = sluice('agent', '--node', 'n', '--source', 'kubernetes', '--config', config);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /agent\.yaml: nodePortRange/);
      assert.doesNotMatch(r.stderr, /not implemented/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a malformed config naming the field, before touching anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
    try {
      const config = join(dir, 'agent.yaml');
      const pinRoot = join(dir, 'pins');
      writeFileSync(
        config,
        `pinRoot: ${pinRoot}\nsocketLB: { cgroupPath: /nonexistent }\nperPacketLB: { interfaces: fab0 }\n`,
      );
      const r = sluice('agent', '--node', 'n', '--source', `manifests:${dir}`, '--config', config);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /agent\.yaml: perPacketLB\.interfaces: /);
      assert.equal(existsSync(pinRoot), false, 'nothing was created');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
