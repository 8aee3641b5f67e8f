import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_ADDRESSING } from './addressing.js';
import { formatProblem } from './errors.js';
import { parseManifestText } from './manifests.js';
import { applyObjects, emptyState } from './state.js';
import { isAccelerated, podTuning, tuningRules } from './traffic-optimization.js';
import { checkManifests } from './validate.js';
import type { ValidationContext } from './validate.js';
import type { Pod } from './types.js';

function problems(yaml: string, context: Partial<ValidationContext> = {}): string[] {
  const docs = parseManifestText(yaml, 'm.yaml');
  return checkManifests(docs, { addressing: DEFAULT_ADDRESSING, ...context }).problems.map(
    formatProblem,
  );
}

const optimization = (spec: string, name = 'fast') => `
apiVersion: sluice.io/v1alpha1
kind: TrafficOptimization
metadata: {name: ${name}, namespace: shop}
spec:
${spec}`;

const KERNEL = ['reno', 'cubic', 'bbr'];

describe('TrafficOptimization: validation', () => {
  it('accepts a complete object', () => {
    const yaml = optimization(`  podSelector: {matchLabels: {app: web}}
  ports: [{port: 80, protocol: TCP}]
  tcp: {congestionControl: bbr, initialCongestionWindow: 20, fastOpen: true, noSlowStartAfterIdle: true}`);
    assert.deepEqual(problems(yaml, { congestionControls: KERNEL }), []);
  });

  it('names the object and the field of every problem', () => {
    const yaml = optimization(`  podSelector: {matchLabels: {app: web}}
  ports: [{port: 70000}]
  tcp: {congestionControl: BBR, initialCongestionWindow: 0, fastopen: true}`);
    const out = problems(yaml);
    assert.ok(
      out.every((p) => p.includes('TrafficOptimization shop/fast')),
      out.join('\n'),
    );
    for (const field of [
      'spec.ports[0].port',
      'spec.tcp.congestionControl',
      'spec.tcp.initialCongestionWindow',
      'spec.tcp.fastopen: unknown field',
    ]) {
      assert.ok(
        out.some((p) => p.includes(field)),
        `${field} in:\n${out.join('\n')}`,
      );
    }
  });

  it('refuses an object that sets nothing, and a missing podSelector', () => {
    const out = problems(optimization(`  tcp: {fastOpen: false}`));
    assert.ok(
      out.some((p) => p.includes('spec.podSelector: required')),
      out.join('\n'),
    );
    assert.ok(
      out.some((p) => p.includes('spec.tcp: sets nothing')),
      out.join('\n'),
    );
  });

  it('refuses a congestion control the kernel does not offer, with the kernel list', () => {
    const yaml = optimization(`  podSelector: {}
  tcp: {congestionControl: vegas}`);
    const out = problems(yaml, { congestionControls: KERNEL });
    assert.equal(out.length, 1);
    assert.match(out[0] ?? '', /spec\.tcp\.congestionControl: unknown congestion control "vegas"/);
    assert.match(out[0] ?? '', /the kernel offers: reno, cubic, bbr/);
    // Without the kernel's list (a pure model check) the name passes.
    assert.deepEqual(problems(yaml), []);
  });

  it("checks a CiliumNetworkPolicy's tcp block too", () => {
    const cnp = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: tuned, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  tcp: {enableBBR: true, zeroRTTSessionResumption: true, noSlowStartAfterIdle: true}
`;
    assert.deepEqual(problems(cnp, { congestionControls: KERNEL }), []);
    const out = problems(cnp, { congestionControls: ['reno', 'cubic'] });
    assert.equal(out.length, 1);
    assert.match(
      out[0] ?? '',
      /CiliumNetworkPolicy shop\/tuned.*spec\.tcp\.enableBBR: unknown congestion control "bbr"/,
    );
    const typo = problems(cnp.replace('enableBBR', 'enableBbr'));
    assert.ok(
      typo.some((p) => p.includes('spec.tcp.enableBbr: unknown field')),
      typo.join('\n'),
    );
  });
});

describe('TrafficOptimization: which pods get what', () => {
  const pod = (name: string, labels: Record<string, string>, namespace = 'shop'): Pod => ({
    namespace,
    name,
    labels,
    annotations: {},
    uid: name,
    nodeName: 'node-0',
    ip: '198.18.16.2',
    containers: [],
    conditions: { ready: true, terminating: false },
    virtual: false,
  });

  const state = applyObjects(
    emptyState(),
    parseManifestText(
      `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {sluice.io/accelerate: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---${optimization(
        `  podSelector: {matchLabels: {app: web}}
  tcp: {congestionControl: cubic, noSlowStartAfterIdle: true}`,
        'a-all-ports',
      )}
---${optimization(
        `  podSelector: {matchLabels: {app: web}}
  ports: [{port: 80}]
  tcp: {congestionControl: bbr, initialCongestionWindow: 32}`,
        'b-port-80',
      )}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c-cilium, namespace: shop}
spec:
  endpointSelector: {matchLabels: {k8s:app: db}}
  tcp: {enableBBR: true, zeroRTTSessionResumption: true}
`.replace(/^\n/, ''),
      'm.yaml',
    ),
    { addressing: DEFAULT_ADDRESSING },
  );

  it('reads the namespace annotation', () => {
    assert.equal(isAccelerated(state.namespaces.get('shop')), true);
    assert.equal(isAccelerated(state.namespaces.get('other')), false);
  });

  it('merges every-port and per-port rules; a port rule wins field by field', () => {
    const rules = tuningRules(state);
    assert.deepEqual(
      rules.map((r) => r.origin),
      [
        'TrafficOptimization shop/a-all-ports',
        'TrafficOptimization shop/b-port-80',
        'CiliumNetworkPolicy shop/c-cilium spec',
      ],
    );
    assert.deepEqual(podTuning(rules, pod('web-1', { app: 'web' })), [
      {
        port: 0,
        settings: { congestionControl: 'cubic', noSlowStartAfterIdle: true },
        origins: ['TrafficOptimization shop/a-all-ports'],
      },
      {
        port: 80,
        settings: {
          congestionControl: 'bbr',
          initialCongestionWindow: 32,
          noSlowStartAfterIdle: true,
        },
        origins: ['TrafficOptimization shop/b-port-80'],
      },
    ]);
  });

  it('maps the CiliumNetworkPolicy tcp block to the same settings', () => {
    assert.deepEqual(podTuning(tuningRules(state), pod('db-0', { app: 'db' })), [
      {
        port: 0,
        settings: { congestionControl: 'bbr', fastOpen: true },
        origins: ['CiliumNetworkPolicy shop/c-cilium spec'],
      },
    ]);
  });

  it('selects only pods of its own namespace', () => {
    assert.deepEqual(podTuning(tuningRules(state), pod('web-1', { app: 'web' }, 'other')), []);
  });
});
