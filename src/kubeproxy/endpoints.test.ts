import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  categorizeEndpoints,
  changedServices,
  endpointString,
  planServicePort,
  servicePortName,
  sortedEndpoints,
} from './endpoints.js';
import { endpoint, view } from './fixtures.js';

const ips = (eps: readonly { ip: string }[] | null): string[] | null =>
  eps === null ? null : eps.map((e) => e.ip);

describe('endpoint selection (pkg/proxy/topology.go CategorizeEndpoints)', () => {
  it('uses ready endpoints only', () => {
    const c = categorizeEndpoints(
      view({
        serviceName: 's',
        endpoints: [
          endpoint('10.0.0.1', 80),
          endpoint('10.0.0.2', 80, { ready: false, serving: false }),
          endpoint('10.0.0.3', 80, { ready: false, serving: true, terminating: true }),
        ],
      }),
    );
    assert.deepEqual(ips(c.clusterEndpoints), ['10.0.0.1']);
    assert.equal(c.localEndpoints, null);
    assert.deepEqual(ips(c.allReachableEndpoints), ['10.0.0.1']);
    assert.equal(c.hasAnyEndpoints, true);
  });

  it('falls back to serving terminating endpoints when none is ready', () => {
    const c = categorizeEndpoints(
      view({
        serviceName: 's',
        endpoints: [
          endpoint('10.0.0.2', 80, { ready: false, serving: false, terminating: true }),
          endpoint('10.0.0.3', 80, { ready: false, serving: true, terminating: true }),
          endpoint('10.0.0.4', 80, { ready: false, serving: false, terminating: false }),
        ],
      }),
    );
    assert.deepEqual(ips(c.clusterEndpoints), ['10.0.0.3']);
    assert.equal(c.hasAnyEndpoints, true);
  });

  it('has no endpoints when nothing is ready or serving-terminating', () => {
    const plan = planServicePort(
      view({ serviceName: 's', endpoints: [endpoint('10.0.0.2', 80, { ready: false })] }),
    );
    assert.equal(plan.hasEndpoints, false);
    assert.equal(plan.internalVerdict, 'reject');
    assert.equal(plan.externalVerdict, 'reject');
    assert.equal(plan.usesClusterPolicyChain, false);
  });

  it('externalTrafficPolicy Local: external traffic to local endpoints only, DROP without', () => {
    const local = view({
      serviceName: 's',
      nodePort: 30000,
      externalTrafficPolicy: 'Local',
      endpoints: [endpoint('10.0.0.1', 80, { isLocal: true }), endpoint('10.0.0.2', 80)],
    });
    const plan = planServicePort(local);
    assert.deepEqual(ips(plan.endpoints.clusterEndpoints), ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(ips(plan.endpoints.localEndpoints), ['10.0.0.1']);
    assert.equal(plan.externalPolicyLocal, true);
    assert.equal(plan.usesLocalPolicyChain, true);
    assert.equal(plan.hasExternalEndpoints, true);
    assert.equal(plan.externalVerdict, null);

    const remoteOnly = planServicePort({ ...local, endpoints: [endpoint('10.0.0.2', 80)] });
    assert.equal(remoteOnly.hasEndpoints, true);
    assert.equal(remoteOnly.hasInternalEndpoints, true, 'ClusterIP traffic still works');
    assert.equal(remoteOnly.hasExternalEndpoints, false);
    assert.equal(remoteOnly.externalVerdict, 'drop');
    assert.equal(remoteOnly.usesLocalPolicyChain, false);
    assert.equal(remoteOnly.usesExternalTrafficChain, true, 'short-circuit rules stay');
  });

  it('externalTrafficPolicy Local on a port nobody reaches from outside means nothing', () => {
    const plan = planServicePort(
      view({
        serviceName: 's',
        externalTrafficPolicy: 'Local',
        endpoints: [endpoint('1.1.1.1', 1)],
      }),
    );
    assert.equal(plan.externalPolicyLocal, false);
    assert.equal(plan.endpoints.localEndpoints, null);
  });

  it('internalTrafficPolicy Local: ClusterIP traffic to local endpoints, DROP without', () => {
    const v = view({
      serviceName: 's',
      internalTrafficPolicy: 'Local',
      endpoints: [endpoint('10.0.0.1', 80, { isLocal: true }), endpoint('10.0.0.2', 80)],
    });
    const plan = planServicePort(v);
    assert.equal(plan.endpoints.clusterEndpoints, null, 'Cluster policy never used');
    assert.deepEqual(ips(plan.endpoints.allReachableEndpoints), ['10.0.0.1']);
    assert.equal(plan.internalPolicyLocal, true);
    assert.equal(plan.hasInternalEndpoints, true);

    const none = planServicePort({ ...v, endpoints: [endpoint('10.0.0.2', 80)] });
    assert.equal(none.hasEndpoints, true);
    assert.equal(none.hasInternalEndpoints, false);
    assert.equal(none.internalVerdict, 'drop');
  });

  it('local serving-terminating fallback is merged into the reachable endpoints', () => {
    const c = categorizeEndpoints(
      view({
        serviceName: 's',
        nodePort: 30000,
        externalTrafficPolicy: 'Local',
        endpoints: [
          endpoint('10.0.0.9', 80),
          endpoint('10.0.0.1', 80, { isLocal: true, ready: false, terminating: true }),
        ],
      }),
    );
    assert.deepEqual(ips(c.clusterEndpoints), ['10.0.0.9']);
    assert.deepEqual(ips(c.localEndpoints), ['10.0.0.1']);
    assert.deepEqual(ips(c.allReachableEndpoints), ['10.0.0.1', '10.0.0.9']);
  });

  it('deduplicates by ip:port (local wins) and sorts by that string', () => {
    const eps = sortedEndpoints([
      endpoint('10.0.0.2', 80),
      endpoint('10.0.0.10', 80),
      endpoint('10.0.0.2', 80, { isLocal: true }),
    ]);
    assert.deepEqual(eps.map(endpointString), ['10.0.0.10:80', '10.0.0.2:80']);
    assert.equal(eps[1]?.isLocal, true);
    assert.equal(endpointString({ ip: 'fd00::1', port: 80 }), '[fd00::1]:80');
  });

  it('names service ports like ServicePortName.String()', () => {
    assert.equal(
      servicePortName({ namespace: 'ns1', serviceName: 'svc1', portName: 'p80' }),
      'ns1/svc1:p80',
    );
    assert.equal(
      servicePortName({ namespace: 'ns1', serviceName: 'svc1', portName: '' }),
      'ns1/svc1',
    );
  });

  it('finds the services whose ports or endpoints changed', () => {
    const a = view({ serviceName: 'a', endpoints: [endpoint('10.0.0.1', 80)] });
    const b = view({ serviceName: 'b', clusterIP: '198.19.0.11' });
    const c = view({ serviceName: 'c', clusterIP: '198.19.0.12' });
    const changed = changedServices(
      [a, b, c],
      [{ ...a, endpoints: [endpoint('10.0.0.2', 80)] }, b, view({ serviceName: 'd' })],
    );
    assert.deepEqual([...changed].sort(), ['default/a', 'default/c', 'default/d']);
    // Endpoint order alone is not a change.
    const two = [endpoint('10.0.0.1', 80), endpoint('10.0.0.2', 80)];
    assert.equal(
      changedServices([{ ...a, endpoints: two }], [{ ...a, endpoints: [...two].reverse() }]).size,
      0,
    );
  });
});
