import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { AGENT_V8_FLAGS } from './v8-flags.js';

const LAUNCHER = fileURLToPath(new URL('../../sluice', import.meta.url));

test('./sluice starts the agent with the agent V8 flags, and only the agent', () => {
  const lines = readFileSync(LAUNCHER, 'utf8').split('\n');
  const agentLine = lines.find((l) => l.includes('exec node') && l.includes('--'));
  assert.ok(agentLine, './sluice has no exec line with flags');
  assert.match(agentLine, new RegExp(`exec node ${AGENT_V8_FLAGS.join(' ')} `));
  const otherLine = lines.filter((l) => l.includes('exec node')).at(-1);
  assert.equal(otherLine?.trim(), 'exec node "$here/dist/cli/main.js" "$@"');
});
