/**
 * The incremental reconcile against real maps (the socket-LB object loaded under a temporary
 * pin directory, nothing attached): every map write the reconciler makes goes through a
 * counting wrapper of the real BpfMap, so the tests count syscalls, not diff entries.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadObject } from '../bpf/object.js';
import { sockLbSpec } from '../datapath/sock-lb.js';
import type { ClusterState } from '../model/index.js';
import { objectKey } from '../model/index.js';
import type { SourceChanges } from '../sources/source.js';
import { requireKernel } from '../testing/privileges.js';
import type { LbMapHandles } from './apply.js';
import { readProgrammed } from './apply.js';
import { diffDatapath } from './diff.js';
import { planForNode } from './plan.js';
import { Reconciler } from './reconciler.js';
import {
  SYNTHETIC_NAMESPACE,
  addService,
  syntheticCluster,
  toggleFirstEndpoint,
} from './synthetic.js';

interface Write {
  map: string;
  op: 'update' | 'delete';
  key: unknown;
}

/** The real map, with its update and delete calls recorded (a batch: one write per entry). */
function counting<T extends object>(name: string, map: T, writes: Write[]): T {
  return new Proxy(map, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'update' || prop === 'delete') {
        return (key: unknown, ...rest: unknown[]) => {
          writes.push({ map: name, op: prop, key });
          return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      if (prop === 'updateBatch') {
        return (entries: readonly (readonly [unknown, unknown])[], ...rest: unknown[]) => {
          for (const [key] of entries) writes.push({ map: name, op: 'update', key });
          return (value as (...a: unknown[]) => unknown).call(target, entries, ...rest);
        };
      }
      if (prop === 'updateBatchRecords') {
        return (
          records: readonly { key: unknown }[],
          start = 0,
          end = records.length,
          ...rest: unknown[]
        ) => {
          for (let i = start; i < end; i++) {
            writes.push({ map: name, op: 'update', key: (records[i] as { key: unknown }).key });
          }
          return (value as (...a: unknown[]) => unknown).call(target, records, start, end, ...rest);
        };
      }
      if (prop === 'deleteBatch') {
        return (keys: readonly unknown[], ...rest: unknown[]) => {
          for (const key of keys) writes.push({ map: name, op: 'delete', key });
          return (value as (...a: unknown[]) => unknown).call(target, keys, ...rest);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

async function withMaps(
  body: (maps: LbMapHandles, writes: Write[]) => void | Promise<void>,
): Promise<void> {
  requireKernel();
  const pinRoot = mkdtempSync(join('/sys/fs/bpf', `sl-reconciler-test-${process.pid}-`));
  try {
    const obj = loadObject(sockLbSpec, { pinRoot });
    try {
      const writes: Write[] = [];
      const real = obj.maps as unknown as LbMapHandles;
      const maps: LbMapHandles = {
        lb4_services: counting('lb4_services', real.lb4_services, writes),
        lb_slots: counting('lb_slots', real.lb_slots, writes),
        lb4_backends: counting('lb4_backends', real.lb4_backends, writes),
        lb4_reverse_nat: counting('lb4_reverse_nat', real.lb4_reverse_nat, writes),
        lb4_affinity: counting('lb4_affinity', real.lb4_affinity, writes),
      };
      await body(maps, writes);
    } finally {
      obj.close();
    }
  } finally {
    rmSync(pinRoot, { recursive: true, force: true });
  }
}

/** The maps hold exactly what a full plan of the state asks for. */
function assertConverged(state: ClusterState, maps: LbMapHandles, r: Reconciler, what: string) {
  const left = diffDatapath(planForNode(state, 'node-0'), readProgrammed(maps), r.idCounters);
  assert.deepEqual(left.ops, [], `${what}: a full diff finds nothing left to do`);
}

const summary = (writes: readonly Write[]): string[] =>
  writes.map((w) => `${w.map}.${w.op}`).sort();

describe('incremental reconcile (kernel maps)', () => {
  it('one endpoint change makes the same few writes at 100 and 3000 services', async () => {
    const perScale: string[][] = [];
    for (const services of [100, 3000]) {
      await withMaps((maps, writes) => {
        const state = syntheticCluster(services, 10);
        const r = new Reconciler('node-0', maps, readProgrammed(maps));
        assert.equal(r.reconcile(state, undefined).mode, 'full');
        const changed = Math.floor(services / 2);
        const frontend = state.services.get(objectKey(SYNTHETIC_NAMESPACE, `svc-${changed}`));
        const serviceId = [...r.state.services.values()].find(
          (s) => s.key.address === frontend?.clusterIP,
        )?.value.service_id;
        for (const round of [1, 2]) {
          writes.length = 0;
          const outcome = r.reconcile(state, toggleFirstEndpoint(state, changed));
          assert.equal(outcome.mode, 'incremental');
          assert.equal(outcome.services, 1);
          // Only the changed service's entries: its frontend, its slots.
          for (const w of writes) {
            if (w.map === 'lb_slots') {
              assert.equal((w.key as { service_id: number }).service_id, serviceId);
            }
            if (w.map === 'lb4_services') {
              assert.equal((w.key as { address: string }).address, frontend?.clusterIP);
            }
          }
          if (round === 1) perScale.push(summary(writes));
          assertConverged(state, maps, r, `${services} services, change ${round}`);
        }
      });
    }
    // Removing a backend: the last slot refills its slot, the tail goes, the count drops, the
    // unused backend is deleted. Four writes whatever the number of services.
    assert.deepEqual(perScale[0], [
      'lb4_backends.delete',
      'lb4_services.update',
      'lb_slots.delete',
      'lb_slots.update',
    ]);
    assert.deepEqual(perScale[1], perScale[0]);
  });

  it('adding a service writes only its own entries', async () => {
    await withMaps((maps, writes) => {
      const state = syntheticCluster(200, 10);
      const r = new Reconciler('node-0', maps, readProgrammed(maps));
      r.reconcile(state, undefined);
      const before = readProgrammed(maps);
      const serviceIds = new Set([...before.services.values()].map((s) => s.value.service_id));
      writes.length = 0;
      const outcome = r.reconcile(state, addService(state, 200, 10));
      assert.equal(outcome.mode, 'incremental');
      const svc = state.services.get(objectKey(SYNTHETIC_NAMESPACE, 'svc-200'));
      assert.ok(writes.length > 0);
      for (const w of writes) {
        assert.equal(w.op, 'update', `${w.map}: nothing deleted`);
        if (w.map === 'lb4_services')
          assert.equal((w.key as { address: string }).address, svc?.clusterIP);
        if (w.map === 'lb_slots')
          assert.ok(!serviceIds.has((w.key as { service_id: number }).service_id));
        if (w.map === 'lb4_backends') assert.ok(!before.backends.has(w.key as number));
        if (w.map === 'lb4_reverse_nat') assert.ok(!before.revNat.has(w.key as number));
      }
      // Its frontend, its reverse NAT, 10 backends and 10 slots.
      assert.equal(writes.length, 22);
      assertConverged(state, maps, r, 'after the add');
    });
  });

  it('agrees with a full plan after every one of a long series of mixed changes', async () => {
    await withMaps((maps) => {
      const state = syntheticCluster(12, 4);
      const r = new Reconciler('node-0', maps, readProgrammed(maps));
      r.reconcile(state, undefined);
      let seed = 42;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const key = (i: number) => objectKey(SYNTHETIC_NAMESPACE, `svc-${i}`);
      const sliceKey = (i: number) => objectKey(SYNTHETIC_NAMESPACE, `svc-${i}-abcde`);
      const none = (): SourceChanges => ({
        services: new Set(),
        endpointSlices: new Set(),
        nodes: new Set(),
      });
      const editService = (i: number, edit: (s: Record<string, unknown>) => void) => {
        const svc = state.services.get(key(i));
        const changes = none();
        (changes.services as Set<string>).add(key(i));
        if (!svc) return addService(state, i, 1 + rand(5));
        const copy = structuredClone(svc) as unknown as Record<string, unknown>;
        edit(copy);
        state.services.set(key(i), copy as never);
        return changes;
      };
      const steps: [string, () => SourceChanges][] = [
        ['toggle an endpoint', () => toggleFirstEndpoint(state, rand(12))],
        ['add or re-add a service', () => addService(state, rand(16), 1 + rand(5))],
        [
          'remove a service',
          () => {
            const i = rand(16);
            state.services.delete(key(i));
            const c = none();
            (c.services as Set<string>).add(key(i));
            return c;
          },
        ],
        [
          'claim a shared externalIP (a conflict)',
          () => editService(rand(16), (s) => (s.externalIPs = ['192.0.2.1'])),
        ],
        [
          'internalTrafficPolicy flips (a new group)',
          () =>
            editService(rand(16), (s) => {
              s.internalTrafficPolicy = s.internalTrafficPolicy === 'Local' ? 'Cluster' : 'Local';
            }),
        ],
        [
          'ClientIP affinity flips',
          () =>
            editService(rand(16), (s) => {
              s.sessionAffinity = s.sessionAffinity === 'ClientIP' ? 'None' : 'ClientIP';
            }),
        ],
        [
          'a slice moves to another service',
          () => {
            const from = rand(12);
            const slice = state.endpointSlices.get(sliceKey(from));
            const c = none();
            if (!slice) return c;
            state.endpointSlices.set(sliceKey(from), {
              ...slice,
              serviceName: `svc-${rand(16)}`,
            });
            (c.endpointSlices as Set<string>).add(sliceKey(from));
            return c;
          },
        ],
        [
          'a slice goes away',
          () => {
            const i = rand(16);
            state.endpointSlices.delete(sliceKey(i));
            const c = none();
            (c.endpointSlices as Set<string>).add(sliceKey(i));
            return c;
          },
        ],
      ];
      for (let round = 0; round < 300; round++) {
        const [what, step] = steps[rand(steps.length)] as [string, () => SourceChanges];
        const outcome = r.reconcile(state, step());
        assert.equal(outcome.mode, 'incremental');
        assertConverged(state, maps, r, `round ${round} (${what})`);
      }
      // A Node change is a full pass (node addresses are part of every backend).
      const nodes = none();
      (nodes.nodes as Set<string>).add('node-1');
      assert.equal(r.reconcile(state, nodes).mode, 'full');
      assertConverged(state, maps, r, 'after a node change');
    });
  });
});
