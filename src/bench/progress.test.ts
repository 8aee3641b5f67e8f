import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { estimateLeft, formatDuration, ScenarioProgress } from './progress.js';

describe('progress', () => {
  it('formats durations for people', () => {
    assert.equal(formatDuration(4.4), '4 s');
    assert.equal(formatDuration(185), '3 min 5 s');
    assert.equal(formatDuration(3720), '1 h 2 min');
    assert.equal(formatDuration(NaN), '?');
  });

  it('estimates the time left from the mean so far', () => {
    assert.equal(estimateLeft(10, 2, 6), 20);
    assert.equal(estimateLeft(10, 6, 6), 0);
    assert.ok(Number.isNaN(estimateLeft(0, 0, 6)));
  });

  it('writes the line start, then the figures with the time taken and left', () => {
    let t = 0;
    let text = '';
    const p = new ScenarioProgress({
      scenario: 'pps',
      index: 1,
      count: 3,
      totalSlots: 4,
      write: (s) => (text += s),
      now: () => t,
    });
    p.begin('services=10', 1, 2, 'iptables');
    t = 2000;
    p.end('pps 100');
    assert.equal(
      text,
      '[1/3 pps services=10 | run 1/2 | iptables] pps 100 (2.0 s, ~6 s left in pps)\n',
    );
  });
});
