import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../agent/config.js';
import {
  availableModes,
  placementCpus,
  ppsManifests,
  ppsScenario,
  unavailableReason,
} from './pps.js';

describe('pps scenario', () => {
  it('places the generator beside the node (split) or with it (shared)', () => {
    assert.deepEqual(placementCpus('split', 1, 2), { generator: 0, node: 1 });
    assert.deepEqual(placementCpus('split', 0, 4), { generator: 1, node: 0 });
    assert.deepEqual(placementCpus('shared', 1, 2), { generator: 1, node: 1 });
    assert.throws(() => placementCpus('split', 0, 1), /two CPUs/);
  });

  it('measures a UDP NodePort with one backend on node-1, beside the filler services', () => {
    const docs = ppsManifests(3) as {
      kind: string;
      spec: Record<string, unknown> & {
        type?: string;
        ports?: { protocol?: string; nodePort?: number }[];
        replicas?: number;
        template?: { spec: { nodeName: string } };
      };
    }[];
    const services = docs.filter((d) => d.kind === 'Service');
    assert.equal(services.length, 3);
    const target = services.find((s) => s.spec.type === 'NodePort');
    assert.equal(target?.spec.ports?.[0]?.protocol, 'UDP');
    assert.ok(target?.spec.ports?.[0]?.nodePort);
    const deployment = docs.find((d) => d.kind === 'Deployment');
    assert.equal(deployment?.spec.replicas, 1);
    assert.equal(deployment?.spec.template?.spec.nodeName, 'node-1');
  });

  it('runs sluice-xdp exactly when the agent config knows xdp, and says why not otherwise', () => {
    const hasXdp = 'xdp' in configSchema.shape;
    assert.equal(availableModes().includes('sluice-xdp'), hasXdp);
    assert.equal(unavailableReason('sluice-xdp') === undefined, hasXdp);
    for (const m of [
      'iptables',
      'nftables',
      'sluice-tc',
      'xdp-drop',
      'xdp-tx',
      'xdp-fwd',
      'xdp-fwd-ct',
    ] as const) {
      assert.equal(unavailableReason(m), undefined);
    }
    assert.deepEqual(ppsScenario.modes, availableModes());
    assert.equal(ppsScenario.modes[0], 'iptables');
  });

  it('runs the ceilings: the interface (xdp-drop, xdp-tx), the path (xdp-fwd, xdp-fwd-ct)', () => {
    for (const m of ['xdp-drop', 'xdp-tx', 'xdp-fwd', 'xdp-fwd-ct']) {
      assert.ok(ppsScenario.modes.includes(m), m);
    }
  });
});
