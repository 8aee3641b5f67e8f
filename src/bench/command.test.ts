import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withModes } from './command.js';
import { BenchError } from './errors.js';
import { selectScenarios } from './scenarios/index.js';

describe('withModes (--modes)', () => {
  const scenarios = selectScenarios(['connect', 'pps', 'maps']);

  it('keeps every scenario without --modes', () => {
    assert.deepEqual(
      withModes(scenarios, undefined).map((s) => s.name),
      ['connect', 'pps', 'maps'],
    );
  });

  it('keeps only the scenarios that have one of the modes', () => {
    assert.deepEqual(
      withModes(scenarios, ['sluice-xdp', 'xdp-fwd']).map((s) => s.name),
      ['pps'],
    );
    assert.deepEqual(
      withModes(scenarios, ['iptables']).map((s) => s.name),
      ['connect', 'pps'],
    );
  });

  it('refuses a mode no selected scenario has, naming it and the modes there are', () => {
    assert.throws(
      () => withModes(scenarios, ['sluice-xdp', 'warp']),
      (e: unknown) =>
        e instanceof BenchError &&
        /--modes: warp is not a mode of connect, pps, maps/.test(e.message) &&
        /xdp-fwd/.test(e.message),
    );
  });
});
