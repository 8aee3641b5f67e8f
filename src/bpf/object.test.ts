import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FlowCounters, packetStatsSpec } from '../datapath/stats.js';
import { requireKernel } from '../testing/privileges.js';
import { be16, ipv4, pad, struct, u8, u32, u64 } from './codec.js';
import { BPFFS } from './environment.js';
import { SluiceError } from './errors.js';
import { mapInfoByFd } from './info.js';
import { loadObject } from './object.js';

function pinRoot(): string {
  return mkdtempSync(join(BPFFS, 'sluice-test-'));
}

describe('loadObject', () => {
  before(requireKernel);

  it('fails naming the struct and field when a codec disagrees with BTF', () => {
    // sport and dport swapped for a 4-byte field: dport lands at the wrong offset.
    const wrongKey = struct('flow_key_v4', { saddr: ipv4, daddr: ipv4, sport: u32, proto: u8, pad: pad(3) });
    const spec = { ...packetStatsSpec, maps: { ...packetStatsSpec.maps, flow_table: { key: wrongKey, value: FlowCounters } } };
    assert.throws(
      () => loadObject(spec),
      (e: unknown) =>
        e instanceof SluiceError &&
        e.code === 'BTF_MISMATCH' &&
        /map flow_table key: struct flow_key_v4 field 'sport' is 4 bytes in BTF|sport' is 2 bytes in BTF, 4 in the codec/.test(e.message),
    );
  });

  it('fails when the codec lacks a field the C struct has', () => {
    // Same size (tail padding), but the explicit pad field of the C struct is not described.
    const partial = struct('flow_key_v4', { saddr: ipv4, daddr: ipv4, sport: be16, dport: be16, proto: u8 });
    const spec = { ...packetStatsSpec, maps: { ...packetStatsSpec.maps, flow_table: { key: partial, value: FlowCounters } } };
    assert.throws(() => loadObject(spec), /struct flow_key_v4 field 'pad' is in BTF but not in the codec/);
  });

  it('fails when key or value sizes differ from the map definition', () => {
    const longer = struct('flow_key_v4', { saddr: ipv4, daddr: ipv4, sport: be16, dport: be16, proto: u8, pad: pad(7) });
    const spec = { ...packetStatsSpec, maps: { ...packetStatsSpec.maps, flow_table: { key: longer, value: FlowCounters } } };
    assert.throws(() => loadObject(spec), /map flow_table key: 16 bytes in the object, 20 in the codec flow_key_v4/);
  });

  it('checks structs nested in other structs (the key inside a ring buffer event)', () => {
    const wrongKey = struct('flow_key_v4', { daddr: ipv4, saddr: ipv4, sport: be16, dport: be16, proto: u8, pad: pad(3) });
    const wrongEvent = struct('flow_event', { key: wrongKey, timestamp_ns: u64, ifindex: u32, pad: pad(4) });
    const spec = { ...packetStatsSpec, maps: { ...packetStatsSpec.maps, flow_events: { ringbuf: wrongEvent } } };
    assert.throws(
      () => loadObject(spec),
      /map flow_events event field 'key': struct flow_key_v4 field 'daddr' is at offset 4 in BTF, 0 in the codec/,
    );
  });

  it('names a map the object does not have', () => {
    const spec = { ...packetStatsSpec, maps: { ...packetStatsSpec.maps, no_such_map: { key: u32, value: u32 } } };
    assert.throws(() => loadObject(spec), /no map named 'no_such_map'/);
  });

  it('checks .rodata variables by name and size', () => {
    const spec = { ...packetStatsSpec, rodata: { drop_udp_dport: u32 } };
    assert.throws(() => loadObject(spec), /\.rodata drop_udp_dport: 2 bytes in BTF, 4 in the codec/);
  });

  it('applies max_entries overrides', () => {
    const obj = loadObject(packetStatsSpec, { maxEntries: { flow_table: 1234 } });
    try {
      assert.equal(obj.maps.flow_table.maxEntries, 1234);
    } finally {
      obj.close();
    }
  });

  it('pins maps and a restarted loader adopts their state', () => {
    const root = pinRoot();
    try {
      const key = { saddr: '198.18.0.1', daddr: '198.18.0.2', sport: 1, dport: 2, proto: 17 };
      const value = { packets: 7n, bytes: 700n, first_seen_ns: 1n, last_seen_ns: 2n };
      const first = loadObject(packetStatsSpec, { pinRoot: root });
      first.maps.flow_table.update(key, value);
      first.close();
      assert.deepEqual(readdirSync(root).sort(), ['flow_table', 'proto_stats']);

      const second = loadObject(packetStatsSpec, { pinRoot: root });
      try {
        assert.deepEqual(second.maps.flow_table.lookup(key), value);
      } finally {
        second.close();
      }
    } finally {
      rmSync(root, { recursive: true });
    }
  });

  it('refuses to adopt a pinned map whose definition changed, and keeps the pin', () => {
    const root = pinRoot();
    try {
      loadObject(packetStatsSpec, { pinRoot: root }).close();
      assert.throws(
        () => loadObject(packetStatsSpec, { pinRoot: root, maxEntries: { flow_table: 99 } }),
        (e: unknown) => e instanceof SluiceError && e.code === 'BPF_LOAD' && /flow_table/.test(e.message),
      );
      assert.ok(existsSync(join(root, 'flow_table')), 'the running datapath keeps its map');
    } finally {
      rmSync(root, { recursive: true });
    }
  });

  it('replaces a counters map pinned with another shape (an older sluice), and says what changed', () => {
    const root = pinRoot();
    try {
      const old = loadObject(packetStatsSpec, { pinRoot: root, maxEntries: { proto_stats: 4 } });
      const flows = mapInfoByFd(old.maps.flow_table.fd, 'flow_table').id;
      old.close();
      const replaced: string[] = [];
      const next = loadObject(packetStatsSpec, {
        pinRoot: root,
        onPinReplaced: (map, change) => replaced.push(`${map}: ${change}`),
      });
      try {
        assert.equal(replaced.length, 1, replaced.join('; '));
        assert.match(replaced[0] ?? '', /^proto_stats: max_entries 4 -> \d+$/);
        assert.notEqual(next.maps.proto_stats.maxEntries, 4);
        assert.equal(mapInfoByFd(next.maps.flow_table.fd, 'flow_table').id, flows, 'state maps are adopted as before');
        assert.deepEqual(readdirSync(root).sort(), ['flow_table', 'proto_stats'], 'nothing set aside left');
      } finally {
        next.close();
      }
      // A state map of another shape is still refused, and the replaced counters pin stays.
      assert.throws(() => loadObject(packetStatsSpec, { pinRoot: root, maxEntries: { flow_table: 99 } }), /flow_table/);
      assert.deepEqual(readdirSync(root).sort(), ['flow_table', 'proto_stats']);
    } finally {
      rmSync(root, { recursive: true });
    }
  });

  it('reports the verifier log when a program is rejected and leaves no pin behind', () => {
    const root = join(BPFFS, `sluice-test-reject-${process.pid}`);
    const spec = { file: 'test/verifier_reject.bpf.o', maps: { reject_pinned: { key: u32, value: u32 } }, programs: ['read_unchecked'] };
    assert.throws(
      () => loadObject(spec, { pinRoot: root }),
      (e: unknown) =>
        e instanceof SluiceError &&
        e.code === 'BPF_LOAD' &&
        /bpf_object__load\(verifier_reject\): /.test(e.message) &&
        /invalid access to packet/.test(e.message),
    );
    assert.equal(existsSync(root), false, 'pin directory removed');
  });

  it('sets .rodata before load', () => {
    const obj = loadObject(packetStatsSpec, { rodata: { drop_udp_dport: 53, track_flows: 0 } });
    obj.close();
    assert.throws(() => loadObject(packetStatsSpec, { rodata: { nope: 1 } }), /rodata 'nope' is not declared/);
  });
});

