import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkLabelSelector, matchesLabels, matchesSelector } from './selectors.js';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'frontend' };

  it('map selectors need every pair', () => {
    assert.equal(matchesLabels({ app: 'web' }, labels), true);
    assert.equal(matchesLabels({ app: 'web', tier: 'backend' }, labels), false);
    assert.equal(matchesLabels({ missing: '' }, labels), false);
    assert.equal(matchesLabels({}, labels), true);
  });

  it('matchExpressions In / NotIn / Exists / DoesNotExist, ANDed with matchLabels', () => {
    const m = (s: Parameters<typeof matchesSelector>[0]) => matchesSelector(s, labels);
    assert.equal(m({}), true);
    assert.equal(
      m({ matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'web'] }] }),
      true,
    );
    assert.equal(m({ matchExpressions: [{ key: 'app', operator: 'In', values: ['api'] }] }), false);
    assert.equal(m({ matchExpressions: [{ key: 'env', operator: 'In', values: [''] }] }), false);
    assert.equal(
      m({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }),
      false,
    );
    // NotIn matches a missing key.
    assert.equal(
      m({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }),
      true,
    );
    assert.equal(m({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }), true);
    assert.equal(m({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }), false);
    assert.equal(
      m({
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'env', operator: 'Exists' }],
      }),
      false,
    );
  });

  it('checks operators, values and keys', () => {
    assert.deepEqual(
      checkLabelSelector(
        {
          matchLabels: { 'x/y/z': 'a' },
          matchExpressions: [
            { key: 'a', operator: 'Exists', values: ['b'] },
            { key: 'a', operator: 'Near' },
          ],
        },
        'sel',
      ).map((p) => p.path),
      [
        'sel.matchLabels["x/y/z"]',
        'sel.matchExpressions[0].values',
        'sel.matchExpressions[1].operator',
      ],
    );
  });
});
