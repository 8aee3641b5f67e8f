/**
 * The path ceilings' programs (bpf/xdp_baseline.c xdp_fwd, bpf/xdp_fwd_ct.c xdp_fwd_ct) run by
 * the kernel with BPF_PROG_TEST_RUN: a frame for the NodePort leaves by XDP_TX as lb_xdp would
 * send it to the remote backend (byte for byte, so every checksum too); everything else passes
 * untouched. xdp_fwd_ct also writes an entry for a new flow and sends a known flow where its
 * entry says; its partner at the backend's node, xdp_reply_check, passes every frame as it
 * came. And the constants reach `xdp_gen attach` in the bytes the object's .rodata holds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import type { TestRunResult } from '../bpf/testrun.js';
import { XdpAction, testRun } from '../bpf/testrun.js';
import type { PacketSpec } from '../packet/index.js';
import { buildPacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import type { FwdPath } from './xdp-fwd.js';
import { macAsU64, xdpFwdAttachArgs, xdpFwdCtSpec, xdpFwdRodata, xdpFwdSpec } from './xdp-fwd.js';
import { CtDir } from '../datapath/lb-tc.js';
import { IPPROTO } from '../datapath/lb.js';
import { assertPacket } from '../testing/packets.js';

const PATH: FwdPath = {
  node: '198.18.0.10',
  nodePort: 30701,
  backend: '198.18.17.7',
  backendPort: 7001,
  nextHopMac: '02:00:00:00:01:0b',
  nodeMac: '02:00:00:00:01:0a',
};
const CLIENT = '198.18.64.9';
const CLIENT_MAC = '02:00:00:00:01:01';

/** The generator's frame (docs/pps.md): 64 bytes, 22 of them payload. */
function udpFrame(
  p: { src: string; sport: number; dst: string; dport: number; ttl?: number },
  eth: { src: string; dst: string },
  opts: { checksum?: number; proto?: 'udp' | 'tcp' } = {},
): PacketSpec {
  const l4 = { sport: p.sport, dport: p.dport };
  return {
    eth,
    ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64, id: 0x2a2a },
    ...(opts.proto === 'tcp'
      ? { tcp: { ...l4, flags: 'A', seq: 1, ack: 1 } }
      : { udp: { ...l4, ...(opts.checksum === undefined ? {} : { checksum: opts.checksum }) } }),
    payload: 'sluice pps 64-byte udp',
  };
}

const IN_ETH = { src: CLIENT_MAC, dst: PATH.nodeMac };
const OUT_ETH = { src: PATH.nodeMac, dst: PATH.nextHopMac };

/** The client's frame to the NodePort from `sport`. */
const toNodePort = (sport: number): Buffer =>
  buildPacket(udpFrame({ src: CLIENT, sport, dst: PATH.node, dport: PATH.nodePort }, IN_ETH));

/** What the ceilings send on for it: to the backend, from node 0 keeping the port, TTL - 1. */
const toBackend = (sport: number): PacketSpec =>
  udpFrame({ src: PATH.node, sport, dst: PATH.backend, dport: PATH.backendPort, ttl: 63 }, OUT_ETH);

describe('xdp_fwd: the path ceiling (BPF_PROG_TEST_RUN)', () => {
  let obj: BpfObject<typeof xdpFwdSpec.maps> | undefined;
  const run = (frame: Buffer): TestRunResult => {
    if (!obj) throw new Error('not loaded');
    return testRun(obj.program('xdp_fwd'), { data: frame });
  };

  before(() => {
    requireKernel();
    obj = loadObject(xdpFwdSpec, { rodata: xdpFwdRodata(PATH) });
  });
  after(() => obj?.close());

  it('sends a frame for the NodePort to the backend: DNAT, SNAT keeping the port, TTL, MACs', () => {
    const input = toNodePort(40123);
    assert.equal(input.length, 64);
    const r = run(input);
    assert.equal(r.retval, XdpAction.TX);
    assertPacket(r.data, toBackend(40123), 'to the backend');
  });

  it('keeps a UDP checksum of 0 (none) as 0', () => {
    const r = run(
      buildPacket(
        udpFrame({ src: CLIENT, sport: 5000, dst: PATH.node, dport: PATH.nodePort }, IN_ETH, {
          checksum: 0,
        }),
      ),
    );
    assert.equal(r.retval, XdpAction.TX);
    assertPacket(
      r.data,
      udpFrame(
        { src: PATH.node, sport: 5000, dst: PATH.backend, dport: PATH.backendPort, ttl: 63 },
        OUT_ETH,
        { checksum: 0 },
      ),
      'no checksum',
    );
  });

  it('passes everything else untouched: another port or address, TCP, TTL 1, not IPv4', () => {
    const others: [string, Buffer][] = [
      [
        'another port',
        buildPacket(udpFrame({ src: CLIENT, sport: 1, dst: PATH.node, dport: 30702 }, IN_ETH)),
      ],
      [
        'another address',
        buildPacket(
          udpFrame({ src: CLIENT, sport: 1, dst: '198.18.0.11', dport: PATH.nodePort }, IN_ETH),
        ),
      ],
      [
        'TCP',
        buildPacket(
          udpFrame({ src: CLIENT, sport: 1, dst: PATH.node, dport: PATH.nodePort }, IN_ETH, {
            proto: 'tcp',
          }),
        ),
      ],
      [
        'TTL 1',
        buildPacket(
          udpFrame({ src: CLIENT, sport: 1, dst: PATH.node, dport: PATH.nodePort, ttl: 1 }, IN_ETH),
        ),
      ],
      [
        'IPv6',
        buildPacket({
          eth: IN_ETH,
          ipv6: { src: 'fd00::1', dst: 'fd00::2' },
          udp: { sport: 1, dport: PATH.nodePort },
          payload: 'x',
        }),
      ],
    ];
    for (const [what, frame] of others) {
      const r = run(frame);
      assert.equal(r.retval, XdpAction.PASS, what);
      assert.ok(r.data.equals(frame), `${what}: unchanged`);
    }
  });
});

describe('xdp_fwd_ct: the path ceiling of a tracking balancer (BPF_PROG_TEST_RUN)', () => {
  let obj: BpfObject<typeof xdpFwdCtSpec.maps> | undefined;
  const loaded = (): BpfObject<typeof xdpFwdCtSpec.maps> => {
    if (!obj) throw new Error('not loaded');
    return obj;
  };
  const run = (frame: Buffer): TestRunResult =>
    testRun(loaded().program('xdp_fwd_ct'), { data: frame });
  const forwardKey = (sport: number) => ({
    saddr: CLIENT,
    daddr: PATH.node,
    sport,
    dport: PATH.nodePort,
    proto: IPPROTO.UDP,
    dir: CtDir.FORWARD,
  });

  before(() => {
    requireKernel();
    obj = loadObject(xdpFwdCtSpec, { rodata: xdpFwdRodata(PATH) });
  });
  after(() => obj?.close());

  it("writes a new flow's entry and forwards it as xdp_fwd does", () => {
    const ct4 = loaded().maps.ct4;
    assert.equal(ct4.lookup(forwardKey(40123)), undefined);
    const r = run(toNodePort(40123));
    assert.equal(r.retval, XdpAction.TX);
    assertPacket(r.data, toBackend(40123), 'to the backend');
    const e = ct4.lookup(forwardKey(40123));
    assert.ok(e, 'the FORWARD entry');
    assert.equal(e.client_addr, CLIENT);
    assert.equal(e.frontend_port, PATH.nodePort);
    assert.equal(e.backend_addr, PATH.backend);
    assert.equal(e.backend_port, PATH.backendPort);
    assert.ok(e.expires_ns > e.created_ns, 'a lifetime');
    // One entry per flow: a second packet finds it and writes nothing more.
    assert.equal(run(toNodePort(40123)).retval, XdpAction.TX);
    assert.equal(ct4.lookupBatch().length, 1);
  });

  it('sends a known flow to the backend its entry names', () => {
    const ct4 = loaded().maps.ct4;
    run(toNodePort(40200));
    const e = ct4.lookup(forwardKey(40200));
    assert.ok(e);
    ct4.update(forwardKey(40200), { ...e, backend_addr: '198.18.17.8', backend_port: 7002 });
    const r = run(toNodePort(40200));
    assert.equal(r.retval, XdpAction.TX);
    assertPacket(
      r.data,
      udpFrame({ src: PATH.node, sport: 40200, dst: '198.18.17.8', dport: 7002, ttl: 63 }, OUT_ETH),
      "to the entry's backend",
    );
  });

  it('passes other traffic untouched and tracks none of it', () => {
    const ct4 = loaded().maps.ct4;
    ct4.clear();
    const frame = buildPacket(
      udpFrame({ src: CLIENT, sport: 1, dst: PATH.node, dport: 30702 }, IN_ETH),
    );
    const r = run(frame);
    assert.equal(r.retval, XdpAction.PASS);
    assert.ok(r.data.equals(frame), 'unchanged');
    assert.equal(ct4.lookupBatch().length, 0);
  });

  it("xdp_reply_check (the backend's node) passes every frame untouched, tracked or not", () => {
    const toPod = buildPacket(
      udpFrame(
        { src: PATH.node, sport: 40123, dst: PATH.backend, dport: PATH.backendPort },
        IN_ETH,
      ),
    );
    const fromPod = buildPacket(
      udpFrame({ src: PATH.backend, sport: PATH.backendPort, dst: CLIENT, dport: 40123 }, IN_ETH),
    );
    loaded().maps.ct4.update(
      {
        saddr: PATH.backend,
        daddr: CLIENT,
        sport: PATH.backendPort,
        dport: 40123,
        proto: IPPROTO.UDP,
        dir: CtDir.REPLY,
      },
      {
        expires_ns: 1n << 62n,
        created_ns: 0n,
        client_addr: CLIENT,
        frontend_addr: PATH.node,
        backend_addr: PATH.backend,
        snat_addr: CLIENT,
        client_port: 40123,
        frontend_port: PATH.nodePort,
        backend_port: PATH.backendPort,
        snat_port: 40123,
        rev_nat_id: 0,
        backend_id: 0,
        state: 0,
        flags: 0,
      },
    );
    for (const [what, frame] of [
      ['no entry', toPod],
      ['a REPLY entry', fromPod],
    ] as const) {
      const r = testRun(loaded().program('xdp_reply_check'), { data: frame });
      assert.equal(r.retval, XdpAction.PASS, what);
      assert.ok(r.data.equals(frame), `${what}: unchanged`);
    }
  });
});

describe('xdp_fwd constants', () => {
  it('gives xdp_gen attach each .rodata value in memory order', () => {
    assert.deepEqual(xdpFwdAttachArgs(PATH), [
      '--rodata',
      'node_ipv4=c612000a',
      '--rodata',
      'path_nodeport=77ed',
      '--rodata',
      'path_backend_addr=c6121107',
      '--rodata',
      'path_backend_port=1b59',
      '--rodata',
      'path_dmac=02000000010b0000',
      '--rodata',
      'path_smac=02000000010a0000',
    ]);
  });

  it('refuses a malformed MAC', () => {
    assert.throws(() => macAsU64('02:00:00:00:01'), /invalid MAC/);
    assert.throws(() => macAsU64('02:00:00:00:01:zz'), /invalid MAC/);
  });
});
