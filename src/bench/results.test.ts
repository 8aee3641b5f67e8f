import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoSeconds, median, parseResults, summarize } from './results.js';

describe('median', () => {
  it('takes the middle of an odd count, whatever the input order', () => {
    assert.equal(median([9, 1, 5]), 5);
    assert.equal(median([3]), 3);
  });

  it('averages the two middle samples of an even count', () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([10, 20]), 15);
  });

  it('sorts numerically, not as strings', () => {
    // As strings 100 < 20 < 3; numerically the middle is 20.
    assert.equal(median([100, 3, 20]), 20);
  });

  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    median(xs);
    assert.deepEqual(xs, [3, 1, 2]);
  });

  it('refuses no samples', () => {
    assert.throws(() => median([]), RangeError);
  });
});

describe('summarize', () => {
  it('gives median, min, max and the number of runs', () => {
    assert.deepEqual(summarize([7, 2, 9, 4, 5]), { median: 5, min: 2, max: 9, runs: 5 });
  });

  it('handles one run and negative values', () => {
    assert.deepEqual(summarize([-3]), { median: -3, min: -3, max: -3, runs: 1 });
    assert.deepEqual(summarize([-1, -5]), { median: -3, min: -5, max: -1, runs: 2 });
  });

  it('refuses samples that are not finite numbers', () => {
    assert.throws(() => summarize([1, NaN, 2]), /not a finite number/);
    assert.throws(() => summarize([Infinity]), /not a finite number/);
    assert.throws(() => summarize([]), RangeError);
  });
});

describe('results file', () => {
  const valid = {
    sluice: '0.1.0',
    machine: { kernel: '6.18.44', cpus: 2, cpuModel: 'x', memGiB: 24 },
    started: '2026-11-24T20:00:00Z',
    results: [
      {
        scenario: 'maps',
        mode: 'c-libbpf',
        params: { entries: 10 },
        metric: 'lookup-ns',
        unit: 'ns/lookup',
        better: 'lower',
        median: 2,
        min: 1,
        max: 3,
        runs: 3,
      },
    ],
  };

  it('accepts the BENCH.md shape', () => {
    assert.deepEqual(parseResults(valid), valid);
  });

  it('rejects a row without a known direction or a numeric median', () => {
    const [row] = valid.results;
    assert.throws(
      () => parseResults({ ...valid, results: [{ ...row, better: 'faster' }] }),
      /not a sluice results file/,
    );
    assert.throws(
      () => parseResults({ ...valid, results: [{ ...row, median: '2' }] }),
      /not a sluice results file/,
    );
  });

  it('writes times to the second in UTC', () => {
    assert.equal(
      isoSeconds(new Date(Date.UTC(2026, 10, 24, 20, 0, 0, 789))),
      '2026-11-24T20:00:00Z',
    );
  });
});
