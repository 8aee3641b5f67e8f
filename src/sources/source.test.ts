import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyState } from '../model/index.js';
import { LatestChannel } from './latest.js';
import type { SourceSnapshot } from './source.js';
import { coalesceSnapshots } from './source.js';

describe('source change sets', () => {
  it('a snapshot the consumer skipped hands its changes on; a whole one makes the next whole', async () => {
    const snap = (generation: number, services?: string[]): SourceSnapshot => {
      const s: SourceSnapshot = { generation, digest: '', state: emptyState(), skipped: [] };
      if (services) {
        s.changes = { services: new Set(services), endpointSlices: new Set(), nodes: new Set() };
      }
      return s;
    };
    const channel = new LatestChannel<SourceSnapshot>(coalesceSnapshots);
    channel.put(snap(2, ['ns/a']));
    channel.put(snap(3, ['ns/b']));
    const merged = (await channel.next()).value as SourceSnapshot;
    assert.equal(merged.generation, 3);
    assert.deepEqual([...(merged.changes?.services ?? [])].sort(), ['ns/a', 'ns/b']);
    channel.put(snap(4));
    channel.put(snap(5, ['ns/c']));
    const whole = (await channel.next()).value as SourceSnapshot;
    assert.equal(whole.generation, 5);
    assert.equal(whole.changes, undefined, 'the skipped one could not say what changed');
  });
});
