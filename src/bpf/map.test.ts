import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { createConnection, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { requireKernel } from '../testing/privileges.js';
import { be16, pad, struct, u8, u32, u64 } from './codec.js';
import { BpfError } from './errors.js';
import type { BpfObject } from './object.js';
import { loadObject } from './object.js';
import { numPossibleCpus, sumPerCpu } from './map.js';

const TestKey = struct('test_key', { id: u32, port: be16, proto: u8, pad: pad(1) });
const TestValue = struct('test_value', { packets: u64, addr: u32, flags: u32 });

const mapTypesSpec = {
  file: 'test/map_types.bpf.o',
  maps: {
    t_hash: { key: TestKey, value: TestValue },
    t_lru_hash: { key: TestKey, value: TestValue },
    t_array: { key: u32, value: TestValue },
    t_percpu_hash: { key: TestKey, value: TestValue, perCpu: true },
    t_percpu_array: { key: u32, value: u64, perCpu: true },
    t_lru_percpu_hash: { key: TestKey, value: u64, perCpu: true },
    t_inner: { key: u32, value: u32 },
    t_array_of_maps: { key: u32, value: u32 },
    t_hash_of_maps: { key: u32, value: u32 },
    t_sockhash: { key: u32, value: u64 },
  },
  programs: [],
} as const;

const key = (id: number) => ({ id, port: 8000 + (id % 1000), proto: 6 });
const value = (n: number) => ({ packets: BigInt(n), addr: n * 3, flags: n % 7 });

describe('BpfMap', () => {
  let obj: BpfObject<typeof mapTypesSpec.maps>;
  before(() => {
    requireKernel();
    obj = loadObject(mapTypesSpec);
  });
  after(() => obj?.close());

  it('looks up, updates with flags and deletes in a hash', () => {
    const m = obj.maps.t_hash;
    assert.equal(m.lookup(key(1)), undefined);
    m.update(key(1), value(1), 'noexist');
    assert.deepEqual(m.lookup(key(1)), value(1));
    assert.throws(
      () => m.update(key(1), value(2), 'noexist'),
      (e: unknown) => e instanceof BpfError && e.message === 'bpf_map_update_elem(t_hash): EEXIST',
    );
    assert.throws(() => m.update(key(2), value(2), 'exist'), /bpf_map_update_elem\(t_hash\): ENOENT/);
    m.update(key(1), value(3), 'exist');
    assert.deepEqual(m.lookup(key(1)), value(3));
    assert.equal(m.delete(key(1)), true);
    assert.equal(m.delete(key(1)), false);
  });

  it('reports E2BIG with the map name past an array end', () => {
    assert.throws(() => obj.maps.t_array.update(8, value(1)), /bpf_map_update_elem\(t_array\): E2BIG/);
  });

  it('iterates and batches: update, lookup, delete (with a missing key)', () => {
    const m = obj.maps.t_hash;
    const entries = Array.from({ length: 500 }, (_, i) => [key(i), value(i)] as const);
    assert.equal(m.updateBatch(entries), 500);
    assert.equal([...m.keys()].length, 500);
    const all = m.lookupBatch();
    assert.equal(all.length, 500);
    const byId = new Map(all.map(([k, v]) => [k.id, v]));
    assert.deepEqual(byId.get(123), value(123));
    const doomed = [...Array.from({ length: 250 }, (_, i) => key(i * 2)), key(9999)];
    assert.equal(m.deleteBatch(doomed), 250);
    assert.equal([...m.entries()].length, 250);
    assert.equal(m.clear(), 250);
    assert.equal([...m.keys()].length, 0);
  });

  it('evicts in an LRU hash instead of failing when full', () => {
    const m = obj.maps.t_lru_hash;
    for (let i = 0; i < 1000; i++) m.update(key(i), value(i));
    const n = [...m.keys()].length;
    assert.ok(n > 0 && n <= 128, `LRU holds at most max_entries, has ${n}`);
    assert.deepEqual(m.lookup(key(999)), value(999), 'the newest entry survives');
  });

  it('reads arrays by batch and by iteration', () => {
    const m = obj.maps.t_array;
    m.update(3, value(3));
    const all = m.lookupBatch();
    assert.equal(all.length, 8);
    assert.deepEqual(all.find(([k]) => k === 3)?.[1], value(3));
    assert.deepEqual(all.find(([k]) => k === 4)?.[1], value(0));
  });

  it('reads and writes one value per possible CPU, and sums them', () => {
    const cpus = numPossibleCpus();
    const m = obj.maps.t_percpu_array;
    m.update(1, Array.from({ length: cpus }, (_, cpu) => BigInt(cpu + 1)));
    const got = m.lookup(1);
    assert.equal(got?.length, cpus);
    assert.equal(sumPerCpu(got ?? []), BigInt((cpus * (cpus + 1)) / 2));

    const h = obj.maps.t_percpu_hash;
    h.updateBatch([[key(5), [value(5)]]]); // one value: written to every CPU
    const v = h.lookup(key(5));
    assert.deepEqual(sumPerCpu(v ?? []), { packets: BigInt(5 * cpus), addr: 15 * cpus, flags: 5 * cpus });

    obj.maps.t_lru_percpu_hash.update(key(1), [7n]);
    assert.equal(sumPerCpu(obj.maps.t_lru_percpu_hash.lookup(key(1)) ?? []), BigInt(7 * cpus));
  });

  it('stores inner maps in array-of-maps and hash-of-maps', () => {
    const innerFd = obj.maps.t_inner.fd;
    for (const outer of [obj.maps.t_array_of_maps, obj.maps.t_hash_of_maps]) {
      outer.update(2, innerFd);
      const id = outer.lookup(2); // the kernel answers with the inner map's id
      assert.ok(id !== undefined && id > 0, `${outer.name} holds a map id`);
      assert.equal(outer.lookupBatch().filter(([, v]) => v > 0).length, 1);
      assert.equal(outer.delete(2), true);
    }
  });

  it('holds established TCP sockets in a sockhash', async () => {
    const server = createServer((s) => s.on('error', () => undefined));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client: Socket = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    try {
      // libuv keeps the fd on the handle; it is the socket the kernel must accept.
      const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
      obj.maps.t_sockhash.update(1, BigInt(fd));
      const cookie = obj.maps.t_sockhash.lookup(1);
      assert.ok(cookie !== undefined && cookie > 0n, 'lookup returns the socket cookie');
      assert.equal(obj.maps.t_sockhash.delete(1), true);
      assert.throws(() => obj.maps.t_sockhash.update(2, 999_999n), /bpf_map_update_elem\(t_sockhash\): EBADF/);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
