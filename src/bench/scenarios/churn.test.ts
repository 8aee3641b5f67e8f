import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeAt, churnScenarioAt } from './churn.js';

describe('churn changes', () => {
  it('flip one backend at a time, unready then ready, round the backends', () => {
    const pods = ['default/a', 'default/b', 'default/c'];
    assert.deepEqual(
      Array.from({ length: 8 }, (_, k) => changeAt(pods, k)).map(
        (c) => `${c.pod}:${c.ready ? 'ready' : 'unready'}`,
      ),
      [
        'default/a:unready',
        'default/a:ready',
        'default/b:unready',
        'default/b:ready',
        'default/c:unready',
        'default/c:ready',
        'default/a:unready',
        'default/a:ready',
      ],
    );
  });

  it('refuses a target rate that is not positive', () => {
    assert.throws(() => churnScenarioAt(0), /target rate must be > 0/);
    assert.throws(() => churnScenarioAt(Number.NaN), /target rate must be > 0/);
  });
});
