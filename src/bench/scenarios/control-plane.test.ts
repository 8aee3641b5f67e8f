import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticViews } from '../../kubeproxy/fixtures.js';
import {
  DEFAULT_SCALES,
  ENDPOINTS_PER_SERVICE,
  QUICK_SCALES,
  changedIndex,
  controlPlaneScenario,
  withOneEndpointRemoved,
} from './control-plane.js';

describe('control-plane scenario', () => {
  it('removes one endpoint of one service and leaves the others as they were', () => {
    const views = syntheticViews(5, ENDPOINTS_PER_SERVICE);
    const { views: changed, service } = withOneEndpointRemoved(views);
    const i = changedIndex(views.length);
    assert.equal(i, 2);
    assert.equal(service, 'bench/svc-2');
    assert.equal(changed[i]?.endpoints.length, ENDPOINTS_PER_SERVICE - 1);
    assert.deepEqual(changed[i]?.endpoints, views[i]?.endpoints.slice(1));
    changed.forEach((v, j) => {
      if (j !== i) assert.equal(v, views[j]);
    });
    assert.equal(views[i]?.endpoints.length, ENDPOINTS_PER_SERVICE, 'the input is not modified');
  });

  it('plans one parameter set per service count: --services, else the default or quick scales', () => {
    const services = (opts: { quick: boolean; services?: number[] }) =>
      [controlPlaneScenario.plan({ cpu: undefined, ...opts })].flat().map((p) => p.params.services);
    assert.deepEqual(services({ quick: false }), DEFAULT_SCALES);
    assert.deepEqual(services({ quick: true }), QUICK_SCALES);
    assert.deepEqual(services({ quick: true, services: [1, 7] }), [1, 7]);
    for (const p of [controlPlaneScenario.plan({ quick: true, cpu: undefined })].flat()) {
      assert.equal(p.params['iptables-backend'], 'legacy');
    }
  });
});
