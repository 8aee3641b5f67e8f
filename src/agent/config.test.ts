import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from './config.js';

describe('agent config', () => {
  it('fills every default', () => {
    const c = resolveConfig({ socketLB: { cgroupPath: '/sys/fs/cgroup/x' } }, 'node-0');
    assert.equal(c.pinRoot, '/sys/fs/bpf/sluice/node-0');
    assert.deepEqual(c.nodePortRange, { min: 30000, max: 32767 });
    assert.deepEqual(c.perPacketLB.interfaces, ['fab0']);
    assert.deepEqual(c.perPacketLB.snatPorts, { min: 61000, max: 65535 });
    assert.deepEqual(c.health, { host: '127.0.0.1', port: 10256 });
    assert.equal(c.conntrack.timeouts.tcpEstablished, 21600);
    assert.equal(c.externalBackendSelection, 'random');
    assert.deepEqual(c.perPacketLB.podInterfaces, []);
  });

  it("runs per-packet LB alone, on the pods' veths too", () => {
    const c = resolveConfig(
      { socketLB: { enabled: false }, perPacketLB: { podInterfaces: ['p*', 'veth?', 'eth1'] } },
      'n',
    );
    assert.equal(c.socketLB.enabled, false);
    assert.deepEqual(c.perPacketLB.podInterfaces, ['p*', 'veth?', 'eth1']);
    assert.throws(
      () =>
        resolveConfig(
          { socketLB: { enabled: false }, perPacketLB: { podInterfaces: ['p/*'] } },
          'n',
          'a.yaml',
        ),
      /a\.yaml: perPacketLB\.podInterfaces\[0\]: expected an interface name or glob/,
    );
    assert.throws(
      () =>
        resolveConfig(
          { socketLB: { enabled: false }, perPacketLB: { enabled: false, podInterfaces: ['p*'] } },
          'n',
        ),
      /perPacketLB.podInterfaces: set, but perPacketLB.enabled is false/,
    );
  });

  it('takes a cluster CIDR only without host bits (it decides which frontends are refused)', () => {
    const cidr = (clusterCIDR: string) =>
      resolveConfig({ socketLB: { enabled: false }, perPacketLB: { clusterCIDR } }, 'n', 'a.yaml');
    assert.equal(cidr('10.244.0.0/16').perPacketLB.clusterCIDR, '10.244.0.0/16');
    assert.throws(
      () => cidr('10.244.1.0/16'),
      /a\.yaml: perPacketLB\.clusterCIDR: 10\.244\.1\.0\/16 is not an IPv4 CIDR with no host bits set/,
    );
  });

  it('refuses a malformed config naming each field', () => {
    assert.throws(
      () =>
        resolveConfig(
          {
            socketLB: { cgroupPath: '/x', enabeld: true },
            perPacketLB: { interfaces: [7] },
            nodePortRange: '30000',
            conntrack: { timeouts: { udp: -1 } },
          },
          'n',
          'agent.yaml',
        ),
      (e: Error) =>
        e.message.includes('agent.yaml: socketLB: Unrecognized key: "enabeld"') &&
        e.message.includes('agent.yaml: perPacketLB.interfaces[0]:') &&
        e.message.includes('agent.yaml: nodePortRange: expected MIN-MAX') &&
        e.message.includes('agent.yaml: conntrack.timeouts.udp:'),
    );
  });

  it('refuses what cannot run: socket LB without a cgroup, maglev without per-packet LB', () => {
    assert.throws(() => resolveConfig({}, 'n'), /socketLB.cgroupPath: required/);
    assert.throws(
      () =>
        resolveConfig(
          {
            socketLB: { enabled: false },
            perPacketLB: { enabled: false },
            externalBackendSelection: 'maglev',
          },
          'n',
        ),
      /externalBackendSelection: maglev .* needs perPacketLB.enabled/,
    );
  });

  it('takes maglev with a prime table size, refuses a non-prime or too small one', () => {
    const base = { socketLB: { enabled: false }, externalBackendSelection: 'maglev' } as const;
    const c = resolveConfig(base, 'n');
    assert.equal(c.externalBackendSelection, 'maglev');
    assert.equal(c.maglev.tableSize, 16381);
    assert.equal(
      resolveConfig({ ...base, maglev: { tableSize: 65521 } }, 'n').maglev.tableSize,
      65521,
    );
    assert.throws(
      () => resolveConfig({ ...base, maglev: { tableSize: 16383 } }, 'n', 'x.yaml'),
      /x\.yaml: maglev\.tableSize: 16383 is not prime .*16381 or 16411/,
    );
    assert.throws(
      () => resolveConfig({ ...base, maglev: { tableSize: 13 } }, 'n', 'x.yaml'),
      /x\.yaml: maglev\.tableSize: 13 is outside 251\.\.131071/,
    );
  });

  it('xdp and lb.mode: defaults, the uplinks by default, only TC-served interfaces', () => {
    const c = resolveConfig({ socketLB: { enabled: false } }, 'n');
    assert.deepEqual(c.xdp, { enabled: false, mode: 'native', interfaces: ['fab0'] });
    assert.equal(c.lb.mode, 'snat');
    const on = resolveConfig(
      {
        socketLB: { enabled: false },
        perPacketLB: { interfaces: ['eth0', 'eth1'] },
        xdp: { enabled: true, mode: 'generic' },
        lb: { mode: 'hybrid' },
      },
      'n',
    );
    assert.deepEqual(on.xdp, { enabled: true, mode: 'generic', interfaces: ['eth0', 'eth1'] });
    assert.equal(on.lb.mode, 'hybrid');
    assert.throws(
      () =>
        resolveConfig(
          { socketLB: { enabled: false }, xdp: { enabled: true, interfaces: ['eth9'] } },
          'n',
        ),
      /xdp.interfaces: eth9 is not one of perPacketLB.interfaces/,
    );
    assert.throws(
      () =>
        resolveConfig(
          { socketLB: { enabled: false }, perPacketLB: { enabled: false }, xdp: { enabled: true } },
          'n',
        ),
      /xdp.enabled: requires perPacketLB.enabled/,
    );
    assert.throws(
      () => resolveConfig({ socketLB: { enabled: false }, lb: { mode: 'nat' } }, 'n', 'a.yaml'),
      /a\.yaml: lb\.mode:/,
    );
    assert.throws(
      () =>
        resolveConfig({ socketLB: { enabled: false }, xdp: { mode: 'offload' } }, 'n', 'a.yaml'),
      /a\.yaml: xdp\.mode:/,
    );
  });
});
