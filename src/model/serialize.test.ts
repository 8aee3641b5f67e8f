import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ModelError } from './errors.js';
import { loadManifests } from './manifests.js';
import { proxyView } from './proxy-view.js';
import { STATE_FORMAT_VERSION, stateFromJSON, stateToJSON } from './serialize.js';
import { applyObjects, emptyState } from './state.js';

const APP = fileURLToPath(new URL('../../src/model/testdata/app/', import.meta.url));

describe('state serialization', () => {
  const state = applyObjects(emptyState(), loadManifests([APP]), { nodes: 2 });

  it('round-trips through JSON text with Maps restored', () => {
    const text = JSON.stringify(stateToJSON(state));
    const back = stateFromJSON(text);
    assert.ok(back.pods instanceof Map);
    assert.deepEqual(back, state);
    assert.deepEqual(proxyView(back, 'node-0'), proxyView(state, 'node-0'));
    // Keys are the Map keys: namespace/name, or name for cluster-scoped kinds.
    const json = stateToJSON(state);
    assert.equal(json.version, STATE_FORMAT_VERSION);
    assert.ok('shop/redis' in json.pods);
    assert.ok('node-1' in json.nodes);
  });

  it('a restored state can be applied to again, with stable allocations', () => {
    const back = stateFromJSON(JSON.parse(JSON.stringify(stateToJSON(state))));
    const again = applyObjects(back, loadManifests([APP]), { nodes: 2 });
    assert.deepEqual(stateToJSON(again), stateToJSON(state));
  });

  it('rejects text that is not a state of this format', () => {
    const bad = (v: unknown, re: RegExp) =>
      assert.throws(
        () => stateFromJSON(v),
        (e: unknown) => e instanceof ModelError && e.code === 'STATE_FORMAT' && re.test(e.message),
      );
    bad('{', /not JSON/);
    bad([], /must be a JSON object/);
    bad({ ...stateToJSON(state), version: 99 }, /format version 99, expected 1/);
    bad({ ...stateToJSON(state), pods: [] }, /pods must be an object/);
  });
});

describe('the sample application (testdata/app)', () => {
  it('applies to the expected cluster', () => {
    const state = applyObjects(emptyState(), loadManifests([APP]), { nodes: 2 });
    assert.deepEqual([...state.namespaces.keys()], ['default', 'shop']);
    assert.equal(state.pods.size, 7);
    assert.equal(state.policies.size, 3);
    const web = state.services.get('shop/web');
    assert.equal(web?.ports[0]?.nodePort, 30080);
    const views = proxyView(state, 'node-0');
    assert.deepEqual(
      views.map((v) => [v.id, v.endpoints.length]),
      [
        ['shop/api:http', 2],
        ['shop/api:metrics', 2],
        ['shop/legacy', 1],
        ['shop/redis', 1],
        ['shop/web', 3],
      ],
    );
    const redisPod = state.pods.get('shop/redis');
    assert.equal(redisPod?.nodeName, 'node-1');
    assert.deepEqual(redisPod?.containers[0]?.ports, [
      { name: 'redis', containerPort: 6379, protocol: 'TCP' },
    ]);
    const api = [...state.pods.values()].find((p) => p.owner?.name === 'api');
    assert.deepEqual(api?.containers[0]?.command, [
      'echo-server',
      '--http',
      '8080',
      '--metrics',
      '9090',
    ]);
  });
});
