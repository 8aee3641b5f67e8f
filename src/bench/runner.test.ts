import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Samples, Scenario } from './runner.js';
import { NOTE, runBench, runScenario, schedule } from './runner.js';

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

  it('summarizes an optional metric over the runs that gave it, and gives no row without any', async () => {
    const given: Record<string, (number | undefined)[]> = { A: [4, undefined, 2], B: [undefined] };
    const scenario: Scenario = {
      name: 'fake',
      modes: ['A', 'B'],
      metrics: [
        { name: 'pps', unit: 'packets/s', better: 'higher' },
        { name: 'cost', unit: 'ns', better: 'lower', optional: true },
      ],
      plan: () => ({
        params: {},
        run: (mode) => {
          const cost = given[mode]?.shift();
          return Promise.resolve<Samples>(cost === undefined ? { pps: 0 } : { pps: 1, cost });
        },
      }),
    };
    const rows = await runScenario(scenario, {
      ...quiet,
      runs: 3,
      signal: new AbortController().signal,
    });
    assert.deepEqual(
      rows.map((r) => [r.mode, r.metric, r.median, r.runs]),
      [
        ['A', 'pps', 1, 3],
        ['A', 'cost', 3, 2],
        ['B', 'pps', 0, 3],
      ],
    );
  });

  it('asks a metric only of the modes that measure it, and gives the others no row', async () => {
    const scenario: Scenario = {
      name: 'fake',
      modes: ['A', 'B'],
      metrics: [
        { name: 'mib', unit: 'MiB', better: 'lower' },
        { name: 'ns', unit: 'ns', better: 'lower', modes: ['B'] },
      ],
      plan: () => ({
        params: {},
        run: (mode) => Promise.resolve<Samples>(mode === 'A' ? { mib: 1 } : { mib: 2, ns: 3 }),
      }),
    };
    const rows = await runScenario(scenario, {
      ...quiet,
      runs: 1,
      signal: new AbortController().signal,
    });
    assert.deepEqual(
      rows.map((r) => `${r.mode}/${r.metric}`),
      ['A/mib', 'B/mib', 'B/ns'],
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

describe('plans', () => {
  it('run only their own modes, and keep notes per mode and for all modes', async () => {
    const calls: string[] = [];
    const scenario: Scenario = {
      name: 'sub',
      modes: ['A', 'B', 'C'],
      metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
      plan: () => ({
        params: { n: 1 },
        modes: ['C', 'A'],
        notes: { fixed: 'yes' },
        setup: (ctx) => {
          ctx.note(NOTE.generatorCpus, '1');
          return Promise.resolve();
        },
        run: (mode, ctx) => {
          calls.push(mode);
          ctx.note(NOTE.measuredCpus, mode === 'A' ? '0' : '1');
          return Promise.resolve({ rate: 1 });
        },
      }),
    };
    const rows = await runScenario(scenario, {
      ...quiet,
      runs: 2,
      signal: new AbortController().signal,
    });
    // The scenario's order, not the plan's.
    assert.deepEqual(calls, ['A', 'C', 'A', 'C']);
    assert.deepEqual(
      rows.map((r) => [r.mode, r.notes]),
      [
        ['A', { fixed: 'yes', [NOTE.generatorCpus]: '1', [NOTE.measuredCpus]: '0' }],
        ['C', { fixed: 'yes', [NOTE.generatorCpus]: '1', [NOTE.measuredCpus]: '1' }],
      ],
    );
  });

  it('run only the selected modes (--modes), and set up no plan left without one', async () => {
    const calls: string[] = [];
    const setups: number[] = [];
    const scenario: Scenario = {
      name: 'sel',
      modes: ['A', 'B', 'C'],
      metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
      plan: () =>
        [1, 2].map((n) => ({
          params: { n },
          modes: n === 1 ? ['A', 'B'] : ['A'],
          setup: () => {
            setups.push(n);
            return Promise.resolve();
          },
          run: (mode: string) => {
            calls.push(`${n}${mode}`);
            return Promise.resolve({ rate: 1 });
          },
        })),
    };
    const rows = await runScenario(scenario, {
      ...quiet,
      runs: 1,
      modes: ['B', 'C'],
      signal: new AbortController().signal,
    });
    assert.deepEqual(calls, ['1B']);
    assert.deepEqual(setups, [1]);
    assert.deepEqual(
      rows.map((r) => [r.params.n, r.mode]),
      [[1, 'B']],
    );
  });

  it('refuses a plan mode the scenario does not have', async () => {
    const scenario: Scenario = {
      name: 'bad',
      modes: ['A'],
      metrics: [],
      plan: () => ({ params: {}, modes: ['Z'], run: () => Promise.resolve({}) }),
    };
    await assert.rejects(
      runScenario(scenario, { ...quiet, runs: 1, signal: new AbortController().signal }),
      /plan mode 'Z'/,
    );
  });

  it('writes one progress line per run with the scenario position, run i/N and mode', async () => {
    const lines: string[] = [];
    await runScenario(fakeScenario([], { A: [1, 2], B: [3, 4] }), {
      ...quiet,
      runs: 2,
      index: 2,
      count: 5,
      signal: new AbortController().signal,
      write: (t) => lines.push(t),
    });
    const text = lines.join('');
    assert.match(
      text,
      /^\[2\/5 fake n=1 \| run 1\/2 \| A\] rate 1\.00 \(\d+\.\d s, ~\d+ s left in fake\)$/m,
    );
    assert.match(text, /^\[2\/5 fake n=1 \| run 2\/2 \| B\] rate 4\.00 \(\d+\.\d s\)$/m);
  });

  it('runs teardown when setup is interrupted', async () => {
    const controller = new AbortController();
    let tornDown = false;
    const scenario: Scenario = {
      name: 'abort',
      modes: ['A'],
      metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
      plan: () => ({
        params: {},
        setup: (ctx) => {
          controller.abort(new Error('stop'));
          ctx.signal.throwIfAborted();
          return Promise.resolve();
        },
        run: () => Promise.resolve({ rate: 1 }),
        teardown: () => {
          tornDown = true;
          return Promise.resolve();
        },
      }),
    };
    await assert.rejects(
      runScenario(scenario, { ...quiet, runs: 1, signal: controller.signal }),
      /stop/,
    );
    assert.equal(tornDown, true);
  });
});

describe('runBench', () => {
  const machine = { kernel: 'k', cpus: 2, cpuModel: 'm', memGiB: 1 };
  const failing: Scenario = {
    name: 'broken',
    modes: ['A'],
    metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
    plan: () => ({ params: {}, run: () => Promise.reject(new Error('no lab today')) }),
  };

  it('records a failed scenario and still runs the others', async () => {
    const results = await runBench({
      ...quiet,
      runs: 1,
      signal: new AbortController().signal,
      scenarios: [failing, fakeScenario([], { A: [1], B: [2] })],
      sluice: 'test',
      machine,
    });
    assert.deepEqual(results.failures, [{ scenario: 'broken', error: 'no lab today' }]);
    assert.deepEqual(
      results.results.map((r) => r.scenario),
      ['fake', 'fake'],
    );
  });

  it('keeps the rows of the plans that ran when one plan of a scenario fails', async () => {
    const partly: Scenario = {
      name: 'partly',
      modes: ['A'],
      metrics: [{ name: 'rate', unit: 'ops/s', better: 'higher' }],
      plan: () => [
        { params: { services: 1 }, run: () => Promise.resolve({ rate: 5 }) },
        { params: { services: 10 }, run: () => Promise.reject(new Error('no packets')) },
      ],
    };
    const results = await runBench({
      ...quiet,
      runs: 1,
      signal: new AbortController().signal,
      scenarios: [partly],
      sluice: 'test',
      machine,
    });
    assert.deepEqual(results.failures, [{ scenario: 'partly', error: 'services=10: no packets' }]);
    assert.deepEqual(
      results.results.map((r) => [r.params.services, r.median]),
      [[1, 5]],
    );
  });

  it('stops at once when interrupted', async () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const interrupting: Scenario = {
      ...failing,
      plan: () => ({
        params: {},
        run: () => {
          controller.abort(new Error('stop'));
          return Promise.reject(new Error('stop'));
        },
      }),
    };
    await assert.rejects(
      runBench({
        ...quiet,
        runs: 1,
        signal: controller.signal,
        scenarios: [interrupting, fakeScenario(calls, { A: [1], B: [2] })],
        sluice: 'test',
        machine,
      }),
      /stop/,
    );
    assert.deepEqual(calls, []);
  });
});
