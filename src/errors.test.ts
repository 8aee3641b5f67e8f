import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { BenchError } from './bench/errors.js';
import { ERROR_CODES } from './bpf/errors.js';
import { SluiceError } from './errors.js';
import { ProxyCommandError } from './kubeproxy/apply.js';
import { LabError } from './lab/topology/errors.js';
import { AgentError } from './agent/errors.js';
import { SourceError } from './sources/errors.js';
import { MODEL_ERROR_CODES, ModelError } from './model/errors.js';

describe('error codes', () => {
  it('every user-facing error is a SluiceError with a code', () => {
    const errors = [
      new LabError('x'),
      new BenchError('x'),
      new ModelError('BAD_OPTIONS', 'x'),
      new ProxyCommandError('sl-x', ['nft'], 1, 'boom'),
      new AgentError('AGENT_CONFIG', 'x'),
      new SourceError('x'),
    ];
    for (const e of errors) assert.ok(e instanceof SluiceError && e.code.length > 0, e.name);
  });

  it('docs/errors.md explains every code', () => {
    const doc = readFileSync(
      join(dirname(fileURLToPath(import.meta.url)), '../docs/errors.md'),
      'utf8',
    );
    const codes = [
      ...ERROR_CODES,
      ...MODEL_ERROR_CODES,
      'LAB',
      'BENCH',
      'PROXY_COMMAND',
      'AGENT_CONFIG',
      'AGENT_SOURCE',
      'AGENT_DATAPATH',
      'SOURCE',
    ];
    // A table row per code: "| `CODE` | ..." (prettier may pad the cell).
    const missing = codes.filter((code) => !new RegExp(`^\\| \`${code}\` +\\|`, 'm').test(doc));
    assert.deepEqual(missing, []);
  });
});
