import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IPPROTO, LbScope } from '../datapath/lb.js';
import { maglevDesired } from './maglev.js';
import { emptyProgrammed, setSlot } from './programmed.js';

describe('agent maglev: which service ids get a table, named how', () => {
  it('takes the groups of external frontends only, members named address:port/PROTO', () => {
    const p = emptyProgrammed();
    const frontend = (address: string, scope: number, serviceId: number, count: number) =>
      p.services.set(`${address}/${scope}`, {
        key: { address, dport: 80, proto: IPPROTO.TCP, scope },
        value: {
          service_id: serviceId,
          rev_nat_id: serviceId,
          backend_count: count,
          flags: 0,
          affinity_timeout: 0,
        },
      });
    frontend('198.19.0.1', LbScope.INTERNAL, 1, 2); // ClusterIP only: random, no table
    frontend('198.19.0.2', LbScope.INTERNAL, 2, 2); // ClusterIP + NodePort sharing group 2
    frontend('198.18.0.10', LbScope.EXTERNAL, 2, 2);
    frontend('198.19.128.1', LbScope.EXTERNAL, 3, 0); // LoadBalancer without backends
    for (const [id, address] of [
      [11, '198.18.16.5'],
      [12, '198.18.17.7'],
    ] as const) {
      p.backends.set(id, {
        address,
        port: 8080,
        proto: IPPROTO.TCP,
        flags: 0,
        node_address: '0.0.0.0',
      });
    }
    for (const serviceId of [1, 2]) {
      setSlot(p, { service_id: serviceId, slot: 1 }, 12);
      setSlot(p, { service_id: serviceId, slot: 2 }, 11);
    }
    setSlot(p, { service_id: 2, slot: 3 }, 11); // past backend_count: a leftover, ignored
    const desired = maglevDesired(p);
    assert.deepEqual(
      [...desired],
      [
        [
          2,
          [
            { name: '198.18.17.7:8080/TCP', id: 12 },
            { name: '198.18.16.5:8080/TCP', id: 11 },
          ],
        ],
        [3, []],
      ],
    );
  });
});
