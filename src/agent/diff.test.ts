import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LbScope } from '../datapath/lb.js';
import type { EndpointView, ServicePortView } from '../model/index.js';
import { formatIPv4 } from '../model/index.js';
import type { MapOp } from './diff.js';
import { applyToProgrammed, arrangeSlots, countOps, diffDatapath } from './diff.js';
import { planDatapath } from './plan.js';
import type { DatapathPlan } from './plan.js';
import type { ProgrammedState } from './programmed.js';
import { emptyProgrammed, programmedFromEntries } from './programmed.js';

const NODE = { name: 'node-0', ip: '198.18.0.10' };
const NODES = new Map([
  ['node-0', '198.18.0.10'],
  ['node-1', '198.18.0.11'],
]);

function endpoint(service: number, j: number, extra: Partial<EndpointView> = {}): EndpointView {
  const local = j % 2 === 0;
  return {
    ip: formatIPv4(0x0a000000 + service * 64 + j),
    port: 8080,
    isLocal: local,
    nodeName: local ? 'node-0' : 'node-1',
    ready: true,
    serving: true,
    terminating: false,
    ...extra,
  };
}

function view(i: number, endpoints: number, extra: Partial<ServicePortView> = {}): ServicePortView {
  return {
    id: `default/svc-${String(i).padStart(6, '0')}:http`,
    namespace: 'default',
    serviceName: `svc-${i}`,
    portName: 'http',
    protocol: 'TCP',
    clusterIP: formatIPv4(0xc6130000 + i + 10),
    port: 80,
    externalIPs: [],
    loadBalancerIPs: [],
    sessionAffinity: null,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    endpoints: Array.from({ length: endpoints }, (_, j) => endpoint(i, j)),
    ...extra,
  };
}

function cluster(services: number, endpoints = 10): ServicePortView[] {
  return Array.from({ length: services }, (_, i) => view(i, endpoints));
}

const plan = (views: ServicePortView[]): DatapathPlan => planDatapath(views, NODE, NODES);

/** Programs views into empty maps; returns the programmed state. */
function programmed(views: ServicePortView[]): ProgrammedState {
  const { ops } = diffDatapath(plan(views), emptyProgrammed());
  return applyToProgrammed(emptyProgrammed(), ops);
}

/**
 * What make-before-break promises after every single operation: each frontend's slots
 * 1..count are written and name written backends, and its reverse-NAT entry exists.
 */
function assertConsistent(state: ProgrammedState, where: string): void {
  for (const [id, { value }] of state.services) {
    const slots = state.slots.get(value.service_id);
    for (let slot = 1; slot <= value.backend_count; slot++) {
      const backend = slots?.get(slot);
      assert.ok(backend !== undefined, `${where}: ${id} slot ${slot} is not written`);
      assert.ok(state.backends.has(backend), `${where}: ${id} slot ${slot} names no backend`);
    }
    assert.ok(state.revNat.has(value.rev_nat_id), `${where}: ${id} has no reverse NAT`);
  }
}

/** Applies the ops one by one, checking consistency after each. */
function applyStepwise(state: ProgrammedState, ops: readonly MapOp[]): ProgrammedState {
  let s = state;
  ops.forEach((op, i) => {
    s = applyToProgrammed(s, [op]);
    assertConsistent(s, `after op ${i} (${op.map}.${op.op})`);
  });
  return s;
}

function change(before: ServicePortView[], after: ServicePortView[]) {
  const state = programmed(before);
  const result = diffDatapath(plan(after), state);
  const next = applyStepwise(state, result.ops);
  assert.deepEqual(diffDatapath(plan(after), next).ops, [], 'converged');
  return { ops: result.ops, counts: countOps(result.ops), state: next };
}

describe('diff: one endpoint change is O(1) map operations', () => {
  for (const services of [10, 2000]) {
    it(`adds an endpoint with 3 writes at ${services} services`, () => {
      const before = cluster(services);
      const after = before.map((v, i) =>
        i === 3 ? { ...v, endpoints: [...v.endpoints, endpoint(3, 10)] } : v,
      );
      const { counts } = change(before, after);
      assert.deepEqual(counts, {
        'lb4_backends.update': 1,
        'lb_slots.update': 1,
        'lb4_services.update': 1,
      });
    });

    it(`removes an endpoint from the middle with 4 operations at ${services} services`, () => {
      const before = cluster(services);
      const after = before.map((v, i) =>
        i === 3 ? { ...v, endpoints: v.endpoints.filter((_, j) => j !== 4) } : v,
      );
      const { counts, ops } = change(before, after);
      assert.deepEqual(counts, {
        'lb_slots.update': 1,
        'lb4_services.update': 1,
        'lb_slots.delete': 1,
        'lb4_backends.delete': 1,
      });
      // The last slot moved into the hole; the service shrank before the tail went.
      assert.deepEqual(
        ops.map((o) => `${o.map}.${o.op}`),
        ['lb_slots.update', 'lb4_services.update', 'lb_slots.delete', 'lb4_backends.delete'],
      );
    });
  }

  it('removes the last slot without moving any', () => {
    const before = cluster(100);
    const after = before.map((v, i) =>
      i === 7 ? { ...v, endpoints: v.endpoints.filter((_, j) => j !== 9) } : v,
    );
    assert.deepEqual(change(before, after).counts, {
      'lb4_services.update': 1,
      'lb_slots.delete': 1,
      'lb4_backends.delete': 1,
    });
  });

  it('an endpoint turning unready leaves like a removed one', () => {
    const before = cluster(100);
    const after = before.map((v, i) =>
      i === 7
        ? { ...v, endpoints: v.endpoints.map((e, j) => (j === 2 ? { ...e, ready: false } : e)) }
        : v,
    );
    assert.deepEqual(change(before, after).counts, {
      'lb_slots.update': 1,
      'lb4_services.update': 1,
      'lb_slots.delete': 1,
      'lb4_backends.delete': 1,
    });
  });

  it('a NodePort service pays one count update per frontend of the group', () => {
    const np = (n: number) => view(1, n, { nodePort: 30001, loadBalancerIPs: ['198.19.128.1'] });
    const before = [view(0, 10), np(10)];
    const after = [view(0, 10), { ...np(10), endpoints: [...np(10).endpoints, endpoint(1, 10)] }];
    assert.deepEqual(change(before, after).counts, {
      'lb4_backends.update': 1,
      'lb_slots.update': 1,
      'lb4_services.update': 3, // ClusterIP, NodePort, LoadBalancer share one slot list
    });
  });

  it('adding a service writes only its own entries', () => {
    const before = cluster(1000);
    const added = view(5000, 10);
    const { ops } = change(before, [...before, added]);
    assert.deepEqual(countOps(ops), {
      'lb4_backends.update': 10,
      'lb4_reverse_nat.update': 1,
      'lb_slots.update': 10,
      'lb4_services.update': 1,
    });
    const service = ops.find((o) => o.map === 'lb4_services');
    assert.equal(service?.op === 'update' && service.key.address, added.clusterIP);
  });

  it('removing a service deletes only its entries, frontend first', () => {
    const before = cluster(50);
    const { counts, ops } = change(before, before.slice(1));
    assert.deepEqual(counts, {
      'lb4_services.delete': 1,
      'lb_slots.delete': 10,
      'lb4_reverse_nat.delete': 1,
      'lb4_backends.delete': 10,
    });
    assert.equal(ops[0]?.map, 'lb4_services');
  });

  it('a terminating endpoint set takes over only when no endpoint is ready', () => {
    const before = [view(0, 2)];
    const after = [
      {
        ...view(0, 2),
        endpoints: [
          endpoint(0, 0, { ready: false, terminating: true }),
          endpoint(0, 1, { ready: false, terminating: true }),
        ],
      },
    ];
    const { state } = change(before, after);
    assert.equal([...state.services.values()][0]?.value.backend_count, 2);
    assert.ok(
      [...state.backends.values()].every((b) => b.flags & 2),
      'flagged TERMINATING',
    );
  });
});

describe('diff: ids and adoption', () => {
  it('a restarted agent reading the maps back computes no operation and keeps every id', () => {
    const views = cluster(200);
    const state = programmed(views);
    const reread = programmedFromEntries({
      services: [...state.services.values()].map(({ key, value }) => [key, value] as const),
      slots: [...state.slots].flatMap(([id, slots]) =>
        [...slots].map(([slot, b]) => [{ service_id: id, slot }, b] as const),
      ),
      backends: [...state.backends],
      revNat: [...state.revNat],
    });
    assert.deepEqual(diffDatapath(plan(views), reread).ops, []);
  });

  it('never hands out an id again while running (affinity and conntrack name ids)', () => {
    const state = programmed(cluster(3));
    const first = diffDatapath(plan(cluster(2)), state);
    const shrunk = applyToProgrammed(state, first.ops);
    const again = diffDatapath(plan(cluster(3)), shrunk, first.counters);
    const newIds = again.ops.flatMap((o) =>
      o.map === 'lb4_services' && o.op === 'update' ? [o.value.service_id] : [],
    );
    assert.ok(
      newIds.every((id) => id > 3),
      `fresh service id, got ${newIds.join(',')}`,
    );
  });

  it('recovers from an agent killed half-way through a change', () => {
    const before = cluster(20);
    const after = before.map((v, i) =>
      i % 3 === 0 ? { ...v, endpoints: v.endpoints.slice(0, 4) } : i % 3 === 1 ? view(i, 12) : v,
    );
    const state = programmed(before);
    const { ops } = diffDatapath(plan(after), state);
    for (const cut of [1, Math.floor(ops.length / 3), Math.floor(ops.length / 2), ops.length - 1]) {
      const crashed = applyStepwise(state, ops.slice(0, cut));
      const resumed = diffDatapath(plan(after), crashed);
      const done = applyStepwise(crashed, resumed.ops);
      assert.deepEqual(diffDatapath(plan(after), done).ops, [], `converged after a cut at ${cut}`);
    }
  });

  it('a traffic policy change moves the external frontends to a new group, make-before-break', () => {
    const before = [view(0, 6, { nodePort: 30000 })];
    const after = [{ ...before[0]!, externalTrafficPolicy: 'Local' as const }];
    const { state } = change(before, after);
    const byScope = [...state.services.values()].map((s) => [s.key.scope, s.value] as const);
    const internal = byScope.find(([scope]) => scope === LbScope.INTERNAL)?.[1];
    const external = byScope.find(([scope]) => scope === LbScope.EXTERNAL)?.[1];
    assert.notEqual(internal?.service_id, external?.service_id);
    assert.equal(internal?.backend_count, 6);
    assert.equal(external?.backend_count, 3, 'the local half');
  });

  it('purges affinity entries of backends that leave an affinity service', () => {
    const sticky = (n: number) => view(0, n, { sessionAffinity: { timeoutSeconds: 60 } });
    const { ops } = change([sticky(3)], [sticky(2)]);
    const purge = ops.find((o) => o.map === 'lb4_affinity');
    assert.ok(purge && purge.op === 'purge' && Array.isArray(purge.backendIds));
    assert.equal(ops.at(-1)?.map, 'lb4_backends', 'the backend goes last');
  });

  it('survives random changes consistently (make-before-break after every operation)', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let views = cluster(30, 5);
    let state = programmed(views);
    let counters = diffDatapath(plan(views), state).counters;
    for (let round = 0; round < 200; round++) {
      const i = random(views.length);
      const v = views[i]!;
      const kind = random(5);
      const next =
        kind === 0
          ? { ...v, endpoints: [...v.endpoints, endpoint(i, 20 + random(20))] }
          : kind === 1
            ? { ...v, endpoints: v.endpoints.filter((_, j) => j !== random(v.endpoints.length)) }
            : kind === 2
              ? {
                  ...v,
                  externalTrafficPolicy: v.externalTrafficPolicy === 'Local' ? 'Cluster' : 'Local',
                  nodePort: 30000 + i,
                }
              : kind === 3
                ? {
                    ...v,
                    endpoints: v.endpoints.map((e) =>
                      random(3) === 0 ? { ...e, ready: !e.ready, terminating: e.ready } : e,
                    ),
                  }
                : { ...v, sessionAffinity: v.sessionAffinity ? null : { timeoutSeconds: 30 } };
      views = views.map((x, j) => (j === i ? (next as ServicePortView) : x));
      const result = diffDatapath(plan(views), state, counters);
      state = applyStepwise(state, result.ops);
      counters = result.counters;
      assert.deepEqual(diffDatapath(plan(views), state, counters).ops, [], `round ${round}`);
    }
  });
});

describe('arrangeSlots', () => {
  const slots = (...ids: number[]) => new Map(ids.map((b, i) => [i + 1, b]));
  it('keeps positions, refills a hole from the end, appends new backends', () => {
    assert.deepEqual(arrangeSlots(slots(1, 2, 3, 4), 4, [1, 3, 4]), [1, 4, 3]);
    assert.deepEqual(arrangeSlots(slots(1, 2, 3), 3, [1, 2, 3, 9]), [1, 2, 3, 9]);
    assert.deepEqual(arrangeSlots(slots(1, 2, 3), 3, [1, 3, 9]), [1, 9, 3]);
    assert.deepEqual(arrangeSlots(slots(1, 2, 3), 0, [3, 1]), [3, 1]);
  });
});
