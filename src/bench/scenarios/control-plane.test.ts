import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { requireKernel } from '../../testing/privileges.js';
import { syntheticViews } from '../../kubeproxy/fixtures.js';
import {
  DEFAULT_SCALES,
  ENDPOINTS_PER_SERVICE,
  QUICK_SCALES,
  CHANGES_PER_RUN,
  changedIndex,
  changedServices,
  controlPlaneScenario,
  runSluice,
  runSluiceProcess,
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

  it('changes distinct services spread over the range', () => {
    const picked = changedServices(10000, CHANGES_PER_RUN);
    assert.equal(new Set(picked).size, CHANGES_PER_RUN);
    assert.ok(picked.every((i) => i >= 0 && i < 10000));
    assert.deepEqual(changedServices(3, CHANGES_PER_RUN).sort(), [0, 1, 2]);
  });

  it('sluice-ts: programs, changes incrementally and checks the maps against a full plan', async () => {
    requireKernel();
    const pinBase = mkdtempSync(join('/sys/fs/bpf', `sl-cp-test-${process.pid}-`));
    try {
      const samples = await runSluice(pinBase, 60, new AbortController().signal);
      assert.deepEqual(Object.keys(samples).sort(), ['change-time', 'program-time']);
      for (const v of Object.values(samples)) assert.ok(Number.isFinite(v) && v >= 0);
    } finally {
      rmSync(pinBase, { recursive: true, force: true });
    }
  });

  it('sluice-ts runs in a worker process of its own, which leaves its pins under pinBase', async () => {
    requireKernel();
    const pinBase = mkdtempSync(join('/sys/fs/bpf', `sl-cp-test-${process.pid}-`));
    try {
      const samples = await runSluiceProcess(pinBase, 60, new AbortController().signal);
      assert.deepEqual(Object.keys(samples).sort(), ['change-time', 'program-time']);
      for (const v of Object.values(samples)) assert.ok(Number.isFinite(v) && v >= 0);
      assert.deepEqual(readdirSync(pinBase), [], 'the worker removed its run pins');
    } finally {
      rmSync(pinBase, { recursive: true, force: true });
    }
  });

  it('an aborted sluice-ts worker rejects with the abort, not a parse error', async () => {
    requireKernel();
    const pinBase = mkdtempSync(join('/sys/fs/bpf', `sl-cp-test-${process.pid}-`));
    try {
      const controller = new AbortController();
      const run = runSluiceProcess(pinBase, 60, controller.signal);
      controller.abort(new Error('stop'));
      await assert.rejects(run, /stop/);
    } finally {
      rmSync(pinBase, { recursive: true, force: true });
    }
  });
});
