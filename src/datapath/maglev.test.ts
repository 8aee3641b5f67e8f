/**
 * Maglev in the TC datapath, run by the kernel with BPF_PROG_TEST_RUN: packets of a 5-tuple land
 * on the backend the TypeScript table predicts (src/model/maglev.ts + the jhash mirror), on two
 * independently programmed "nodes" whose backend ids differ; the writer changes only the slots
 * that change and adopts what the map holds.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { TcAction } from '../bpf/testrun.js';
import { maglevTable } from '../model/maglev.js';
import { buildPacket, parsePacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { IPPROTO, LbServiceFlag } from './lb.js';
import { lbTcRodata, lbTcSpec, readVerdicts } from './lb-tc.js';
import type { LbTcNetns, ServiceSpec } from './lb-tc-harness.js';
import {
  clearMaps,
  CLIENT,
  createLbTcNetns,
  LB_IP,
  NODE,
  programService,
} from './lb-tc-harness.js';
import type { MaglevMember } from './maglev.js';
import { maglevRodata, maglevSlot, MaglevTables } from './maglev.js';

type LbTcObject = BpfObject<typeof lbTcSpec.maps>;

const M = 1021;
/** Ten backends on node B's pod CIDR (routed via NODE_B in the test namespace). */
const ADDRESSES = Array.from({ length: 10 }, (_, i) => `198.18.17.${20 + i}`);
const nameOf = (address: string, port: number, proto: string): string =>
  `${address}:${port}/${proto}`;

function service(
  serviceId: number,
  idBase: number,
  addresses: readonly string[],
  frontend: ServiceSpec['frontend'],
): ServiceSpec {
  return {
    serviceId,
    frontend,
    flags: frontend.address === NODE ? LbServiceFlag.NODEPORT : LbServiceFlag.LOADBALANCER,
    backends: addresses.map((address, i) => ({ id: idBase + i, address, port: 8080 })),
  };
}

function members(s: ServiceSpec, proto: string): MaglevMember[] {
  return s.backends.map((b) => ({ name: nameOf(b.address, b.port, proto), id: b.id }));
}

describe('maglev: TC selection by the Maglev table', () => {
  let ns: LbTcNetns;
  let nodeA: LbTcObject;
  let nodeB: LbTcObject;

  const load = (): LbTcObject =>
    loadObject(lbTcSpec, {
      rodata: {
        ...lbTcRodata({ nodeIPv4: NODE }),
        ...maglevRodata({ enabled: true, tableSize: M }),
      },
    });

  before(() => {
    requireKernel();
    ns = createLbTcNetns();
    nodeA = load();
    nodeB = load();
  });
  after(() => {
    nodeA?.close();
    nodeB?.close();
    ns?.destroy();
  });
  beforeEach(() => {
    for (const o of [nodeA, nodeB]) {
      clearMaps(o);
      o.maps.lb_maglev.clear();
    }
  });

  /** The backend address:port the program sent a new flow to. */
  function backendOf(
    obj: LbTcObject,
    proto: 'tcp' | 'udp',
    sport: number,
    dst: string,
    dport: number,
  ) {
    const spec =
      proto === 'tcp'
        ? {
            ipv4: { src: CLIENT, dst },
            tcp: { sport, dport, flags: 'S', seq: 1 },
          }
        : { ipv4: { src: CLIENT, dst }, udp: { sport, dport }, payload: 'q' };
    const res = ns.testRun(obj.program('lb_tc_ingress'), buildPacket(spec));
    assert.equal(res.retval, TcAction.REDIRECT, `flow ${sport} was not forwarded`);
    const p = parsePacket(res.data);
    const port = proto === 'tcp' ? p.tcp?.dport : p.udp?.dport;
    return `${p.ipv4?.dst}:${port}`;
  }

  function predicted(
    names: readonly string[],
    proto: number,
    sport: number,
    dst: string,
    dport: number,
  ) {
    const table = maglevTable(names, M);
    const slot = maglevSlot({ saddr: CLIENT, daddr: dst, sport, dport, proto }, M);
    const name = table.backends[table.slots[slot] as number] as string;
    return name.replace(/\/(TCP|UDP)$/, '');
  }

  it('sends each 5-tuple to the backend the TypeScript table predicts (TCP NodePort, UDP LoadBalancer)', () => {
    const tcpSvc = service(1, 100, ADDRESSES, { address: NODE, port: 30080 });
    const udpSvc = service(2, 200, ADDRESSES, { address: LB_IP, port: 53, proto: 'udp' });
    programService(nodeA, tcpSvc);
    programService(nodeA, udpSvc);
    const tables = new MaglevTables(nodeA.maps.lb_maglev, M);
    tables.sync(
      new Map([
        [1, members(tcpSvc, 'TCP')],
        [2, members(udpSvc, 'UDP')],
      ]),
    );
    const used = new Set<string>();
    for (let sport = 20000; sport < 20300; sport++) {
      const got = backendOf(nodeA, 'tcp', sport, NODE, 30080);
      used.add(got);
      const names = members(tcpSvc, 'TCP').map((m) => m.name);
      assert.equal(got, predicted(names, IPPROTO.TCP, sport, NODE, 30080), `TCP flow ${sport}`);
    }
    for (let sport = 20000; sport < 20100; sport++) {
      const names = members(udpSvc, 'UDP').map((m) => m.name);
      const got = backendOf(nodeA, 'udp', sport, LB_IP, 53);
      assert.equal(got, predicted(names, IPPROTO.UDP, sport, LB_IP, 53), `UDP flow ${sport}`);
    }
    // 300 flows over 10 backends: every backend gets some (the hash spreads them).
    assert.equal(used.size, ADDRESSES.length);
  });

  it('sends a flow to the same backend on another node, whose backend ids differ', () => {
    const onA = service(1, 100, ADDRESSES, { address: LB_IP, port: 80 });
    // Node B: other service and backend ids, backends listed in another order.
    const onB = service(7, 900, [...ADDRESSES].reverse(), { address: LB_IP, port: 80 });
    programService(nodeA, onA);
    programService(nodeB, onB);
    new MaglevTables(nodeA.maps.lb_maglev, M).sync(new Map([[1, members(onA, 'TCP')]]));
    new MaglevTables(nodeB.maps.lb_maglev, M).sync(new Map([[7, members(onB, 'TCP')]]));
    for (let sport = 30000; sport < 30200; sport++) {
      assert.equal(
        backendOf(nodeB, 'tcp', sport, LB_IP, 80),
        backendOf(nodeA, 'tcp', sport, LB_IP, 80),
        `flow ${sport}`,
      );
    }
  });

  it('rewrites only the slots that change when a backend leaves, and keeps the other flows', () => {
    const before = service(1, 100, ADDRESSES, { address: NODE, port: 30080 });
    programService(nodeA, before);
    const tables = new MaglevTables(nodeA.maps.lb_maglev, M);
    tables.sync(new Map([[1, members(before, 'TCP')]]));
    const old = Uint32Array.from(tables.slotsOf(1) ?? []);
    const gone = before.backends[3];
    assert.ok(gone);
    const after = { ...before, backends: before.backends.filter((b) => b !== gone) };
    programService(nodeA, after);
    const stats = tables.sync(new Map([[1, members(after, 'TCP')]]));
    const now = tables.slotsOf(1) ?? new Uint32Array(0);
    let differ = 0;
    for (let s = 0; s < M; s++) if (old[s] !== now[s]) differ++;
    assert.equal(stats.recomputed, 1);
    assert.equal(stats.created, 0);
    assert.equal(stats.slotsWritten, differ);
    assert.ok(differ < M / 5, `${differ} of ${M} slots rewritten for one of ten backends`);
    assert.ok(!now.includes(gone.id));
    const names = members(after, 'TCP').map((m) => m.name);
    for (let sport = 40000; sport < 40200; sport++) {
      assert.equal(
        backendOf(nodeA, 'tcp', sport, NODE, 30080),
        predicted(names, 6, sport, NODE, 30080),
      );
    }
    // Unchanged members: nothing recomputed or written.
    const again = tables.sync(new Map([[1, members(after, 'TCP')]]));
    assert.deepEqual([again.recomputed, again.slotsWritten, again.created], [0, 0, 0]);
  });

  it('adopts the tables the map holds; a service without one falls back to a random slot', () => {
    const svc = service(1, 100, ADDRESSES, { address: NODE, port: 30080 });
    const bare = service(3, 300, ADDRESSES.slice(0, 2), { address: NODE, port: 30081 });
    programService(nodeA, svc);
    programService(nodeA, bare);
    const first = new MaglevTables(nodeA.maps.lb_maglev, M);
    first.sync(new Map([[1, members(svc, 'TCP')]]));
    // A restarted agent: reads the tables back, writes nothing for the same backends.
    const second = new MaglevTables(nodeA.maps.lb_maglev, M);
    assert.deepEqual(second.serviceIds(), [1]);
    assert.deepEqual(second.slotsOf(1), first.slotsOf(1));
    const stats = second.sync(new Map([[1, members(svc, 'TCP')]]));
    assert.deepEqual([stats.slotsWritten, stats.created, stats.removed], [0, 0, 0]);
    // Service 3 has no table: it is still served, from its slots.
    const got = backendOf(nodeA, 'tcp', 50000, NODE, 30081);
    assert.ok(['198.18.17.20:8080', '198.18.17.21:8080'].includes(got), got);
    assert.equal(readVerdicts(nodeA.maps.verdict_stats).NEW_FLOW?.packets, 1n);
    // Another table size (config changed): the table is replaced, not patched.
    const resized = new MaglevTables(nodeA.maps.lb_maglev, 509);
    const r = resized.sync(new Map([[1, members(svc, 'TCP')]]));
    assert.deepEqual([r.created, r.slotsWritten], [1, 0]);
    // A service that leaves the desired set loses its table.
    assert.equal(resized.sync(new Map()).removed, 1);
    assert.equal(nodeA.maps.lb_maglev.lookupBatch().length, 0);
  });

  it('keeps the tables in the pinned map across a reload of the object (agent restart)', () => {
    const pinRoot = `/sys/fs/bpf/sluice/test-maglev-${process.pid}`;
    const opts = {
      pinRoot,
      rodata: {
        ...lbTcRodata({ nodeIPv4: NODE }),
        ...maglevRodata({ enabled: true, tableSize: M }),
      },
    };
    const svc = service(1, 100, ADDRESSES, { address: NODE, port: 30080 });
    try {
      const first = loadObject(lbTcSpec, opts);
      const written = new MaglevTables(first.maps.lb_maglev, M);
      written.sync(new Map([[1, members(svc, 'TCP')]]));
      first.close();
      const second = loadObject(lbTcSpec, opts);
      try {
        const adopted = new MaglevTables(second.maps.lb_maglev, M);
        assert.deepEqual(adopted.slotsOf(1), written.slotsOf(1));
        const stats = adopted.sync(new Map([[1, members(svc, 'TCP')]]));
        assert.deepEqual([stats.created, stats.slotsWritten, stats.removed], [0, 0, 0]);
      } finally {
        second.close();
      }
    } finally {
      rmSync(pinRoot, { recursive: true, force: true });
    }
  });
});
