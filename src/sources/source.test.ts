import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyState } from '../model/index.js';
import { LatestChannel } from './latest.js';
import type { SourceSnapshot } from './source.js';
import { changedObjects, coalesceSnapshots } from './source.js';

const node = (name: string, ip: string) => ({ name, labels: {}, ip, podCIDR: '' });

describe('source change sets', () => {
  it('changedObjects names what was added, changed or removed, per kind', () => {
    const before = emptyState();
    before.nodes.set('a', node('a', '198.18.0.10'));
    before.nodes.set('b', node('b', '198.18.0.11'));
    const after = emptyState();
    after.nodes.set('a', node('a', '198.18.0.10')); // same content, another object
    after.nodes.set('c', node('c', '198.18.0.12'));
    const changes = changedObjects(before, after);
    assert.deepEqual([...changes.nodes].sort(), ['b', 'c']);
    assert.deepEqual([...changes.services], []);
    assert.deepEqual([...changes.endpointSlices], []);
  });

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
