/**
 * The whole foundation chain on a real program: C struct (bpf/include/stats.h) -> BTF-checked
 * codec -> map ops -> BPF_PROG_TEST_RUN on crafted packets -> assertions on verdicts, packets,
 * per-CPU counters, the flow table and ring buffer events.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sumPerCpu } from '../bpf/map.js';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { TcAction, testRun, XdpAction } from '../bpf/testrun.js';
import type { PacketSpec } from '../packet/index.js';
import { buildInnerIp, buildPacket, checksumErrors } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { packetStatsSpec, StatsProto } from './stats.js';

const v4 = { src: '198.18.1.10', dst: '198.18.2.20' };
const v6 = { src: '2001:db8::1', dst: '2001:db8::2' };

const cases: { name: string; spec: PacketSpec; proto: number; flow: boolean }[] = [
  {
    name: 'TCP SYN with options',
    spec: {
      ipv4: v4,
      tcp: {
        sport: 40000,
        dport: 80,
        flags: 'S',
        options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }],
      },
    },
    proto: StatsProto.TCP,
    flow: true,
  },
  {
    name: 'UDP',
    spec: { ipv4: v4, udp: { sport: 5353, dport: 53 }, payload: 'query' },
    proto: StatsProto.UDP,
    flow: true,
  },
  {
    name: 'IPv4 with options, UDP',
    spec: {
      ipv4: { ...v4, options: Buffer.from([0x94, 0x04, 0x00, 0x00]) },
      udp: { sport: 1, dport: 2 },
    },
    proto: StatsProto.UDP,
    flow: true,
  },
  {
    name: 'ICMP port unreachable quoting a UDP packet',
    spec: {
      ipv4: { src: v4.dst, dst: v4.src },
      icmp: {
        type: 3,
        code: 3,
        inner: buildInnerIp({ ipv4: v4, udp: { sport: 5353, dport: 53 } }),
      },
    },
    proto: StatsProto.ICMP,
    flow: true,
  },
  {
    name: 'TCP over IPv6',
    spec: { ipv6: v6, tcp: { sport: 1000, dport: 443, flags: 'SA' } },
    proto: StatsProto.TCP,
    flow: false,
  },
  {
    name: 'ICMPv6 echo',
    spec: { ipv6: v6, icmpv6: { type: 128, code: 0, id: 1, seq: 1 } },
    proto: StatsProto.ICMPV6,
    flow: false,
  },
  {
    name: 'ARP (not IP)',
    spec: { eth: { type: 0x0806 }, payload: Buffer.alloc(28) },
    proto: StatsProto.NON_IP,
    flow: false,
  },
];

describe('packet_stats datapath', () => {
  let obj: BpfObject<typeof packetStatsSpec.maps>;
  before(() => {
    requireKernel();
    obj = loadObject(packetStatsSpec, { rodata: { drop_udp_dport: 53 } });
  });
  after(() => obj?.close());
  beforeEach(() => {
    obj.maps.flow_table.clear();
    for (let i = 0; i <= StatsProto.NON_IP; i++)
      obj.maps.proto_stats.update(i, [{ packets: 0n, bytes: 0n }]);
  });

  for (const program of ['stats_xdp', 'stats_tc'] as const) {
    it(`${program} counts every protocol and leaves packets untouched`, () => {
      const repeat = 3;
      const expected = new Map<number, { packets: bigint; bytes: bigint }>();
      for (const c of cases) {
        const data = buildPacket(c.spec);
        assert.deepEqual(checksumErrors(data), [], `${c.name}: builder makes valid checksums`);
        const r = testRun(obj.program(program), { data, repeat });
        const isDropped = c.spec.udp?.dport === 53;
        const pass = program === 'stats_xdp' ? XdpAction.PASS : TcAction.OK;
        const drop = program === 'stats_xdp' ? XdpAction.DROP : TcAction.SHOT;
        assert.equal(r.retval, isDropped ? drop : pass, `${c.name}: verdict`);
        assert.ok(r.data.equals(data), `${c.name}: packet unchanged`);
        const e = expected.get(c.proto) ?? { packets: 0n, bytes: 0n };
        expected.set(c.proto, {
          packets: e.packets + BigInt(repeat),
          bytes: e.bytes + BigInt(repeat * data.length),
        });
      }
      for (let i = 0; i <= StatsProto.NON_IP; i++) {
        const got = sumPerCpu(obj.maps.proto_stats.lookup(i) ?? []);
        assert.deepEqual(got, expected.get(i) ?? { packets: 0n, bytes: 0n }, `proto_stats[${i}]`);
      }
    });
  }

  it('tracks IPv4 flows by 5-tuple, in network byte order', () => {
    const data = buildPacket(cases[0]!.spec);
    testRun(obj.program('stats_xdp'), { data, repeat: 5 });
    const flows = obj.maps.flow_table.lookupBatch();
    assert.equal(flows.length, 1);
    const [key, counters] = flows[0]!;
    assert.deepEqual(key, { saddr: v4.src, daddr: v4.dst, sport: 40000, dport: 80, proto: 6 });
    assert.equal(counters.packets, 5n);
    assert.equal(counters.bytes, BigInt(5 * data.length));
    assert.ok(counters.last_seen_ns >= counters.first_seen_ns);
  });

  it('a flow primed from user space is continued, not restarted, by the program', () => {
    const data = buildPacket(cases[1]!.spec);
    const key = { saddr: v4.src, daddr: v4.dst, sport: 5353, dport: 53, proto: 17 };
    obj.maps.flow_table.update(key, {
      packets: 100n,
      bytes: 1000n,
      first_seen_ns: 1n,
      last_seen_ns: 1n,
    });
    testRun(obj.program('stats_tc'), { data });
    const after = obj.maps.flow_table.lookup(key);
    assert.equal(after?.packets, 101n);
    assert.equal(after?.first_seen_ns, 1n);
  });

  it('sends a ring buffer event for each new flow, without blocking the event loop', async () => {
    const events: { sport: number; dport: number }[] = [];
    const reader = obj.maps.flow_events.read((e) =>
      events.push({ sport: e.key.sport, dport: e.key.dport }),
    );
    try {
      for (let sport = 1000; sport < 1010; sport++) {
        testRun(obj.program('stats_xdp'), {
          data: buildPacket({ ipv4: v4, udp: { sport, dport: 9 } }),
          repeat: 2,
        });
      }
      // Earlier tests' flows are still queued in the ring: look only at this test's (dport 9).
      const ours = () => events.filter((e) => e.dport === 9).map((e) => e.sport);
      for (let i = 0; i < 100 && ours().length < 10; i++) await sleep(10);
      await sleep(20); // a duplicate per repeated packet would arrive by now
      assert.deepEqual(
        ours(),
        Array.from({ length: 10 }, (_, i) => 1000 + i),
        'one event per new flow, in order, not one per packet',
      );
      assert.equal(reader.count, events.length);
    } finally {
      reader.close();
    }
  });
});

describe('packet_stats config', () => {
  before(requireKernel);

  it('track_flows=0 in .rodata leaves the flow table empty', () => {
    const obj = loadObject(packetStatsSpec, { rodata: { track_flows: 0 } });
    try {
      const r = testRun(obj.program('stats_xdp'), { data: buildPacket(cases[1]!.spec) });
      assert.equal(r.retval, XdpAction.PASS, 'no drop port configured');
      assert.equal(obj.maps.flow_table.lookupBatch().length, 0);
    } finally {
      obj.close();
    }
  });
});
