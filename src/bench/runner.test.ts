import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Samples, Scenario } from './runner.js';
import { runScenario, schedule } from './runner.js';

describe('schedule', () => {
  it('interleaves modes run by run: A B A B A B', () => {
    assert.deepEqual(
      schedule(['A', 'B'], 3).map((s) => `${s.mode}${s.run}`),
      ['A1', 'B1', 'A2', 'B2', 'A3', 'B3'],
    );
  });

  it('keeps the mode order within each run for three modes', () => {
    assert.deepEqual(
      schedule(['x', 'y', 'z'], 2).map((s) => s.mode),
      ['x', 'y', 'z', 'x', 'y', 'z'],
    );
  });

  it('is empty for zero runs and refuses a negative or fractional count', () => {
    assert.deepEqual(schedule(['A'], 0), []);
    assert.throws(() => schedule(['A'], -1), RangeError);
    assert.throws(() => schedule(['A'], 1.5), RangeError);
  });
});

/** A scenario whose metric value is (call number) so the summary can be checked exactly. */
function fakeScenario(calls: string[], values: Record<string, number[]>): Scenario {
  return {
    name: 'fake',
    modes: ['A', 'B'],
    metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
    plan: () => ({
      params: { n: 1 },
      run: (mode) => {
        calls.push(mode);
        const v = values[mode]?.shift();
        const samples: Samples = v === undefined ? {} : { rate: v };
        return Promise.resolve(samples);
      },
    }),
  };
}

const quiet = { quick: true, cpu: undefined, write: () => {} };

describe('runScenario', () => {
  it('calls the modes interleaved and summarizes each mode over its own runs', async () => {
    const calls: string[] = [];
    const rows = await runScenario(fakeScenario(calls, { A: [5, 1, 3], B: [20, 40, 30] }), {
      ...quiet,
      runs: 3,
      signal: new AbortController().signal,
    });
    assert.deepEqual(calls, ['A', 'B', 'A', 'B', 'A', 'B']);
    assert.deepEqual(
      rows.map((r) => [r.mode, r.metric, r.median, r.min, r.max, r.runs]),
      [
        ['A', 'rate', 3, 1, 5, 3],
        ['B', 'rate', 30, 20, 40, 3],
      ],
    );
    assert.deepEqual(rows[0]?.params, { n: 1 });
    assert.equal(rows[0]?.better, 'higher');
  });

  it('fails when a run does not report a metric', async () => {
    await assert.rejects(
      runScenario(fakeScenario([], { A: [1], B: [] }), {
        ...quiet,
        runs: 1,
        signal: new AbortController().signal,
      }),
      /fake\/B: run 1 gave no number for rate/,
    );
  });

  it('starts no run once aborted', async () => {
    const calls: string[] = [];
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(
      runScenario(fakeScenario(calls, { A: [1], B: [1] }), {
        ...quiet,
        runs: 1,
        signal: controller.signal,
      }),
      /stop/,
    );
    assert.deepEqual(calls, []);
  });
});
