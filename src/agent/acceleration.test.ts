import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PodFlag, TuneFlag } from '../datapath/sock-redirect.js';
import { DEFAULT_ADDRESSING, applyObjects, emptyState, parseManifestText } from '../model/index.js';
import { FAST_OPEN_SYSCTL, planAcceleration, podGeneration } from './acceleration.js';
import { resolveConfig } from './config.js';

const STATE = applyObjects(
  emptyState(),
  parseManifestText(
    `
apiVersion: v1
kind: Namespace
metadata: { name: fast, annotations: { sluice.io/accelerate: "true" } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: fast, labels: { app: web } }
spec: { nodeName: node-0, containers: [{ name: c, image: sluice/echo }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: fast }
spec: { nodeName: node-0, containers: [{ name: c, image: sluice/echo }] }
---
apiVersion: v1
kind: Pod
metadata: { name: far, namespace: fast }
spec: { nodeName: node-1, containers: [{ name: c, image: sluice/echo }] }
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: plain, labels: { app: db } }
spec: { nodeName: node-0, containers: [{ name: c, image: sluice/echo }] }
---
apiVersion: v1
kind: Pod
metadata: { name: other, namespace: plain }
spec: { nodeName: node-0, containers: [{ name: c, image: sluice/echo }] }
---
apiVersion: sluice.io/v1alpha1
kind: TrafficOptimization
metadata: { name: web, namespace: fast }
spec:
  podSelector: { matchLabels: { app: web } }
  ports: [{ port: 80 }]
  tcp: { congestionControl: bbr, initialCongestionWindow: 20 }
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: db, namespace: plain }
spec:
  endpointSelector: { matchLabels: { app: db } }
  tcp: { zeroRTTSessionResumption: true, noSlowStartAfterIdle: true }
`,
    'm.yaml',
  ),
  { addressing: DEFAULT_ADDRESSING, nodes: 2 },
);

const ip = (key: string): string => STATE.pods.get(key)?.ip ?? '';

describe('socket acceleration plan (agent)', () => {
  const plan = planAcceleration(STATE, 'node-0');

  it('lists the pods of this node that are accelerated or tuned, nothing else', () => {
    assert.deepEqual([...plan.pods.values()].map((p) => [p.pod, p.flags]).sort(), [
      ['fast/client', PodFlag.ACCELERATE],
      ['fast/web', PodFlag.ACCELERATE | PodFlag.TUNE],
      ['plain/db', PodFlag.TUNE],
    ]);
    assert.equal(plan.pods.get(ip('fast/far')), undefined, 'another node');
    assert.equal(plan.pods.get(ip('plain/other')), undefined, 'neither accelerated nor tuned');
  });

  it('turns settings into map entries and namespace sysctls', () => {
    assert.deepEqual(plan.tuning.get(`${ip('fast/web')}:80`)?.value, {
      congestion: 'bbr',
      initial_cwnd: 20,
      flags: TuneFlag.CONGESTION | TuneFlag.INITIAL_CWND,
    });
    assert.deepEqual(plan.tuning.get(`${ip('plain/db')}:0`)?.value, {
      congestion: '',
      initial_cwnd: 0,
      flags: TuneFlag.FAST_OPEN | TuneFlag.NO_SLOW_START_AFTER_IDLE,
    });
    assert.deepEqual(plan.pods.get(ip('plain/db'))?.sysctls, {
      'net.ipv4.tcp_fastopen': FAST_OPEN_SYSCTL,
      'net.ipv4.tcp_slow_start_after_idle': '0',
    });
    assert.deepEqual(plan.pods.get(ip('fast/web'))?.sysctls, {});
  });

  it("keys a pod's generation by its uid: a recreated pod re-learns its namespace", () => {
    const web = STATE.pods.get('fast/web');
    assert.ok(web);
    assert.equal(plan.pods.get(web.ip)?.generation, podGeneration(web.uid, 'fast/web', web.ip));
    assert.notEqual(
      podGeneration('uid-1', 'fast/web', web.ip),
      podGeneration('uid-2', 'fast/web', web.ip),
    );
  });
});

describe('socketAcceleration config', () => {
  it('is off by default', () => {
    const c = resolveConfig({ socketLB: { cgroupPath: '/sys/fs/cgroup/sluice/x' } }, 'n');
    assert.equal(c.socketAcceleration.enabled, false);
  });

  it("needs the node's cgroup and refuses unknown fields", () => {
    assert.throws(
      () =>
        resolveConfig({ socketLB: { enabled: false }, socketAcceleration: { enabled: true } }, 'n'),
      /socketAcceleration\.enabled: needs socketLB\.cgroupPath/,
    );
    assert.throws(
      () => resolveConfig({ socketAcceleration: { enable: true } }, 'n'),
      /socketAcceleration: Unrecognized key/,
    );
  });
});
