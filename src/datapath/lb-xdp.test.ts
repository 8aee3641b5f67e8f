/**
 * The XDP load balancer (bpf/lb_xdp.c) run by the kernel with BPF_PROG_TEST_RUN, for every
 * forwarding mode: input frame -> expected frame (byte for byte, so every checksum too) +
 * XDP action + counters + conntrack entries. XDP and TC objects share their maps through pins,
 * as on a node, so hand-offs from XDP to TC and the backend node's DSR stage are run end to end.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { mapInfoByFd } from '../bpf/info.js';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { TcAction, XdpAction } from '../bpf/testrun.js';
import type { PacketSpec } from '../packet/index.js';
import { buildPacket, parsePacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { IPPROTO, LbServiceFlag } from './lb.js';
import type { Ct4EntryValue, Ct4KeyValue, LbModeName } from './lb-tc.js';
import { CtDir, CtFlag, CtState, lbTcRodata, lbTcSpec, readVerdicts } from './lb-tc.js';
import type { LbTcNetns, ServiceSpec } from './lb-tc-harness.js';
import {
  clearMaps,
  CLIENT,
  CLUSTER_CIDR,
  CLUSTER_IP,
  createLbTcNetns,
  LB_IP,
  MAC,
  NODE,
  POD,
  POD_B,
  programService,
} from './lb-tc-harness.js';
import { lbXdpRodata, lbXdpSpec } from './lb-xdp.js';
import { xdpTestRun } from './lb-xdp-harness.js';
import { assertPacket } from '../testing/packets.js';

type Obj = BpfObject<typeof lbTcSpec.maps>;

const S = {
  nodePortLocal: {
    serviceId: 1,
    frontend: { address: NODE, port: 30080 },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 11, address: POD, port: 8080, local: true }],
  },
  nodePortRemote: {
    serviceId: 3,
    frontend: { address: NODE, port: 30082 },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 31, address: POD_B, port: 8080 }],
  },
  lbUdpRemote: {
    serviceId: 4,
    frontend: { address: LB_IP, port: 53, proto: 'udp' },
    flags: LbServiceFlag.LOADBALANCER,
    backends: [{ id: 41, address: POD_B, port: 5353 }],
  },
  clusterIpRemote: {
    serviceId: 6,
    frontend: { address: CLUSTER_IP, port: 80, scope: 'internal' },
    flags: LbServiceFlag.CLUSTER_IP,
    backends: [{ id: 61, address: POD_B, port: 8080 }],
  },
  clusterEmpty: {
    serviceId: 9,
    frontend: { address: NODE, port: 30092 },
    flags: LbServiceFlag.NODEPORT,
    backends: [],
  },
} satisfies Record<string, ServiceSpec>;

const frameEth = { src: MAC.frameSrc, dst: MAC.frameDst };
const toNodeB = { src: MAC.fab0, dst: MAC.nodeB };
const toClient = { src: MAC.fab0, dst: MAC.client };

interface Pkt {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  ttl?: number;
  eth?: { src: string; dst: string };
  options?: Buffer;
}

function tcp(flags: string): (p: Pkt) => PacketSpec {
  return (p) => ({
    eth: p.eth ?? frameEth,
    ipv4: {
      src: p.src,
      dst: p.dst,
      ttl: p.ttl ?? 64,
      id: 0x1234,
      flags: { df: true },
      ...(p.options ? { options: p.options } : {}),
    },
    tcp: {
      sport: p.sport,
      dport: p.dport,
      flags,
      seq: 1000,
      ack: flags.includes('A') ? 5000 : 0,
      ...(flags.includes('S') ? { options: [{ kind: 'mss', value: 1460 } as const] } : {}),
    },
    payload: 'hello',
  });
}

function udp(opts: { noChecksum?: boolean } = {}): (p: Pkt) => PacketSpec {
  return (p) => ({
    eth: p.eth ?? frameEth,
    ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64, id: 0x4321 },
    udp: { sport: p.sport, dport: p.dport, ...(opts.noChecksum ? { checksum: 0 } : {}) },
    payload: 'query',
  });
}

/** The DSR option (bpf/include/dsr.h): type 0x9a, length 8, frontend port, frontend address. */
function dsrOption(address: string, port: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x9a;
  b[1] = 8;
  b.writeUInt16BE(port, 2);
  Buffer.from(address.split('.').map(Number)).copy(b, 4);
  return b;
}

const SEC_NS = 1_000_000_000n;

const client = (dport: number, dst = NODE, sport = 40000): Pkt => ({
  src: CLIENT,
  sport,
  dst,
  dport,
});

function forwardKey(p: Pkt, proto: number): Ct4KeyValue {
  return { saddr: p.src, daddr: p.dst, sport: p.sport, dport: p.dport, proto, dir: CtDir.FORWARD };
}

function replyKey(e: Ct4EntryValue, proto: number): Ct4KeyValue {
  return {
    saddr: e.backend_addr,
    daddr: e.snat_addr,
    sport: e.backend_port,
    dport: e.snat_port,
    proto,
    dir: CtDir.REPLY,
  };
}

describe('lb_xdp: the XDP fast path, every forwarding mode', () => {
  const pinRoot = `/sys/fs/bpf/sluice/test-lbxdp-${process.pid}`;
  let ns: LbTcNetns;
  let tc: Obj;
  const xdp = {} as Record<LbModeName, BpfObject<typeof lbXdpSpec.maps>>;

  before(() => {
    requireKernel();
    ns = createLbTcNetns();
    const config = { nodeIPv4: NODE, clusterCidr: CLUSTER_CIDR };
    // TC in dsr mode: as the backend's node it learns whatever its mode; as a balancer it is
    // what a node that fell back from XDP runs.
    tc = loadObject(lbTcSpec, { pinRoot, rodata: lbTcRodata({ ...config, lbMode: 'dsr' }) });
    for (const mode of ['snat', 'dsr', 'hybrid'] as const) {
      xdp[mode] = loadObject(lbXdpSpec, {
        pinRoot,
        rodata: lbXdpRodata({ ...config, lbMode: mode }),
      });
    }
  });
  after(() => {
    tc?.close();
    for (const o of Object.values(xdp)) o.close();
    ns?.destroy();
    rmSync(pinRoot, { recursive: true, force: true });
  });
  beforeEach(() => clearMaps(tc));

  const run = (mode: LbModeName, spec: PacketSpec) =>
    xdpTestRun(ns, xdp[mode].program('lb_xdp'), buildPacket(spec));
  const runTc = (hook: 'ingress' | 'egress', spec: PacketSpec | Buffer) =>
    ns.testRun(
      tc.program(hook === 'ingress' ? 'lb_tc_ingress' : 'lb_tc_egress'),
      Buffer.isBuffer(spec) ? spec : buildPacket(spec),
    );
  function counted(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, c] of Object.entries(readVerdicts(tc.maps.verdict_stats))) {
      out[name] = Number(c.packets);
    }
    return out;
  }
  const entry = (key: Ct4KeyValue): Ct4EntryValue => {
    const e = tc.maps.ct4.lookup(key);
    assert.ok(e, `conntrack entry ${JSON.stringify(key)}`);
    return e;
  };

  it('maps are shared: the XDP and TC objects hold the same pinned ct4', () => {
    assert.equal(
      mapInfoByFd(xdp.snat.maps.ct4.fd, 'ct4').id,
      mapInfoByFd(tc.maps.ct4.fd, 'ct4').id,
    );
    const svc = (o: Obj) => mapInfoByFd(o.maps.lb4_services.fd, 'lb4_services').id;
    assert.equal(svc(xdp.dsr), svc(tc));
  });

  describe('snat', () => {
    it('NodePort SYN -> remote backend: DNAT + SNAT, TTL and MACs of a hop, XDP_TX', () => {
      programService(tc, S.nodePortRemote);
      const r = run('snat', tcp('S')(client(30082)));
      assert.equal(r.retval, XdpAction.TX);
      const e = entry(forwardKey(client(30082), IPPROTO.TCP));
      assert.deepEqual(entry(replyKey(e, IPPROTO.TCP)), e, 'REPLY entry equal');
      assert.equal(e.flags, CtFlag.SNAT);
      assert.equal(e.state, CtState.SYN_SENT);
      assert.equal(e.snat_addr, NODE);
      assertPacket(
        r.data,
        tcp('S')({ src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080, ttl: 63, eth: toNodeB }),
        'to node B',
      );
      assert.deepEqual(counted(), { NEW_FLOW: 1, DELIVER_XDP_TX: 1 });
    });

    it("the backend's reply -> reverse NAT, XDP_TX to the client; the next packet is a ct hit", () => {
      programService(tc, S.nodePortRemote);
      run('snat', tcp('S')(client(30082)));
      const e = entry(forwardKey(client(30082), IPPROTO.TCP));
      const reply = run(
        'snat',
        tcp('SA')({ src: POD_B, sport: 8080, dst: NODE, dport: e.snat_port }),
      );
      assert.equal(reply.retval, XdpAction.TX);
      assertPacket(
        reply.data,
        tcp('SA')({ src: NODE, sport: 30082, dst: CLIENT, dport: 40000, ttl: 63, eth: toClient }),
        'to the client',
      );
      assert.equal(entry(forwardKey(client(30082), IPPROTO.TCP)).state, CtState.ESTABLISHED);
      const ack = run('snat', tcp('A')(client(30082)));
      assert.equal(ack.retval, XdpAction.TX);
      assertPacket(
        ack.data,
        tcp('A')({ src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080, ttl: 63, eth: toNodeB }),
        'ct hit',
      );
      assert.deepEqual(counted(), {
        NEW_FLOW: 1,
        CT_REPLY: 1,
        CT_FORWARD: 1,
        DELIVER_XDP_TX: 3,
      });
    });

    for (const noChecksum of [false, true]) {
      it(`LoadBalancer UDP ${noChecksum ? 'without' : 'with'} a checksum -> remote: SNAT`, () => {
        programService(tc, S.lbUdpRemote);
        const p = { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 };
        const r = run('snat', udp({ noChecksum })(p));
        assert.equal(r.retval, XdpAction.TX);
        const e = entry(forwardKey(p, IPPROTO.UDP));
        assert.equal(e.flags, CtFlag.SNAT);
        assertPacket(
          r.data,
          udp({ noChecksum })({
            src: NODE,
            sport: e.snat_port,
            dst: POD_B,
            dport: 5353,
            ttl: 63,
            eth: toNodeB,
          }),
          'to node B',
        );
      });
    }

    it('local backend: XDP makes the entry and passes; TC translates by it, no second lookup', () => {
      programService(tc, S.nodePortLocal);
      const spec = tcp('S')(client(30080));
      const r = run('snat', spec);
      assert.equal(r.retval, XdpAction.PASS);
      assert.ok(r.data.equals(buildPacket(spec)), 'untouched');
      const e = entry(forwardKey(client(30080), IPPROTO.TCP));
      assert.equal(e.backend_addr, POD);
      assert.deepEqual(counted(), { NEW_FLOW: 1, XDP_HANDOFF: 1 });
      // Without the frontend, only the entry XDP made can route the packet at TC.
      tc.maps.lb4_services.clear();
      const t = runTc('ingress', spec);
      assert.equal(t.retval, TcAction.REDIRECT);
      assertPacket(
        t.data,
        tcp('S')({
          ...client(30080),
          dst: POD,
          dport: 8080,
          ttl: 63,
          eth: { src: MAC.p1, dst: MAC.pod },
        }),
        'to the pod',
      );
      assert.deepEqual(counted(), {
        NEW_FLOW: 1,
        XDP_HANDOFF: 1,
        CT_FORWARD: 1,
        DELIVER_REDIRECT: 1,
      });
    });
  });

  describe("traffic to the node's pods", () => {
    it('a reply to a pod (a ClusterIP flow TC sent away without SNAT) is left to TC: not looked up, not counted', () => {
      programService(tc, S.clusterIpRemote);
      const out = { src: POD, sport: 33000, dst: CLUSTER_IP, dport: 80 };
      assert.equal(
        ns.testRun(tc.program('lb_tc_ingress'), buildPacket(tcp('S')(out)), { dev: 'p1' }).retval,
        TcAction.REDIRECT,
      );
      const key = forwardKey(out, IPPROTO.TCP);
      const before = entry(key);
      const reply = tcp('SA')({ src: POD_B, sport: 8080, dst: POD, dport: 33000 });
      const r = run('snat', reply);
      assert.equal(r.retval, XdpAction.PASS);
      assert.ok(r.data.equals(buildPacket(reply)), 'untouched');
      assert.deepEqual(entry(key), before, 'the flow is not updated at XDP');
      assert.deepEqual(counted(), { NEW_FLOW: 1, DELIVER_REDIRECT: 1 }, 'no XDP verdict');
      const t = runTc('ingress', reply);
      assert.equal(t.retval, TcAction.REDIRECT);
      assertPacket(
        t.data,
        tcp('SA')({
          src: CLUSTER_IP,
          sport: 80,
          dst: POD,
          dport: 33000,
          ttl: 63,
          eth: { src: MAC.p1, dst: MAC.pod },
        }),
        'reverse-translated by TC, to the pod',
      );
      assert.equal(entry(key).state, CtState.ESTABLISHED);
    });
  });

  describe('next-hop cache (fib_cache.h)', () => {
    const key = { saddr: NODE, daddr: POD_B, ifindex: 0, tos: 0 };
    const hop = (dmac: string, expires: bigint, fitsLen = 1500) => [
      {
        expires_ns: expires,
        ifindex: 0,
        fits_len: fitsLen,
        dmac: Buffer.from(dmac.split(':').map((b) => Number.parseInt(b, 16))),
        smac: Buffer.from(MAC.fab0.split(':').map((b) => Number.parseInt(b, 16))),
      },
    ];
    const bogus = '02:00:00:00:ee:ee';
    const sendSyn = (sport: number) => {
      const r = run('snat', tcp('S')(client(30082, NODE, sport)));
      assert.equal(r.retval, XdpAction.TX);
      return parsePacket(r.data).eth?.dst;
    };
    const withHop = (dmac: string, expires: bigint, fitsLen?: number) => {
      const cache = xdp.snat.maps.fib4_cache;
      cache.clear();
      const k = { ...key, ifindex: ns.ifindex.fab0 };
      cache.update(
        k,
        hop(dmac, expires, fitsLen).map((v) => ({ ...v, ifindex: ns.ifindex.fab0 })),
      );
    };

    it('a live entry gives the next hop without the FIB', () => {
      programService(tc, S.nodePortRemote);
      withHop(bogus, process.hrtime.bigint() + 60n * SEC_NS);
      assert.equal(sendSyn(40001), bogus, 'the cached MAC, not the FIB answer');
    });

    it('an expired entry, or one checked for shorter packets, asks the FIB again', () => {
      programService(tc, S.nodePortRemote);
      withHop(bogus, 0n);
      assert.equal(sendSyn(40002), MAC.nodeB, 'expired: the FIB answer');
      withHop(bogus, process.hrtime.bigint() + 60n * SEC_NS, 40);
      assert.equal(sendSyn(40003), MAC.nodeB, 'longer than fits_len: the FIB answer');
      const e = xdp.snat.maps.fib4_cache.lookup({ ...key, ifindex: ns.ifindex.fab0 });
      assert.ok(e);
      // Per-CPU: the CPU the run was on holds the refreshed next hop.
      const hex = MAC.nodeB.replaceAll(':', '');
      assert.ok(
        e.some((v) => v.dmac.toString('hex') === hex),
        'refreshed',
      );
    });
  });

  describe('dsr', () => {
    it('NodePort SYN -> remote backend: DNAT only, the option names the frontend, XDP_TX', () => {
      programService(tc, S.nodePortRemote);
      const r = run('dsr', tcp('S')(client(30082)));
      assert.equal(r.retval, XdpAction.TX);
      const e = entry(forwardKey(client(30082), IPPROTO.TCP));
      assert.equal(e.flags, CtFlag.DSR);
      assert.equal(e.snat_addr, CLIENT);
      assert.equal(tc.maps.ct4.lookup(replyKey(e, IPPROTO.TCP)), undefined, 'no REPLY entry here');
      assertPacket(
        r.data,
        tcp('S')({
          src: CLIENT,
          sport: 40000,
          dst: POD_B,
          dport: 8080,
          ttl: 63,
          eth: toNodeB,
          options: dsrOption(NODE, 30082),
        }),
        'to node B',
      );
      assert.deepEqual(counted(), { NEW_FLOW: 1, DELIVER_XDP_TX: 1 });
    });

    it("the backend's node learns the flow; the backend's replies leave from the frontend", () => {
      programService(tc, S.nodePortRemote);
      const toB = run('dsr', tcp('S')(client(30082))).data;
      tc.maps.lb4_services.clear(); // node B has no such NodePort on its own address
      const learn = runTc('ingress', toB);
      assert.equal(learn.retval, TcAction.OK);
      assert.ok(learn.data.equals(toB), 'passed untouched to the stack (and the pod)');
      // Node A's XDP and node B's TC share the counters here (one pinned map).
      assert.deepEqual(
        counted(),
        { NEW_FLOW: 1, DELIVER_XDP_TX: 1, DSR_LEARNED: 1, PASS_DSR_FLOW: 1 },
        'learned, then passed without the rest of the pipeline',
      );
      const key: Ct4KeyValue = {
        saddr: POD_B,
        daddr: CLIENT,
        sport: 8080,
        dport: 40000,
        proto: IPPROTO.TCP,
        dir: CtDir.REPLY,
      };
      const e = entry(key);
      assert.equal(e.flags, CtFlag.DSR);
      assert.equal(e.frontend_addr, NODE);
      assert.equal(e.frontend_port, 30082);
      const reply = runTc(
        'egress',
        tcp('SA')({ src: POD_B, sport: 8080, dst: CLIENT, dport: 40000 }),
      );
      assert.equal(reply.retval, TcAction.OK);
      assertPacket(
        reply.data,
        tcp('SA')({ src: NODE, sport: 30082, dst: CLIENT, dport: 40000 }),
        'reply from the service address',
      );
      assert.equal(entry(key).state, CtState.ESTABLISHED);
      const ack = run('dsr', tcp('A')(client(30082))).data;
      assert.ok(runTc('ingress', ack).data.equals(ack), 'the next packet passes untouched too');
      assert.deepEqual(counted(), {
        NEW_FLOW: 1,
        CT_FORWARD: 1,
        DELIVER_XDP_TX: 2,
        DSR_LEARNED: 1,
        PASS_DSR_FLOW: 2,
        CT_REPLY: 1,
        DELIVER_STACK: 1,
      });
    });

    it("clients of the cluster (a pod, the node) keep SNAT: the service's reply would be a martian", () => {
      programService(tc, S.nodePortRemote);
      const pod = { src: '198.18.17.9', sport: 40000, dst: NODE, dport: 30082 };
      const r = run('dsr', tcp('S')(pod));
      assert.equal(r.retval, XdpAction.TX);
      const e = entry(forwardKey(pod, IPPROTO.TCP));
      assert.equal(e.flags, CtFlag.SNAT);
      assertPacket(
        r.data,
        tcp('S')({ src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080, ttl: 63, eth: toNodeB }),
        'SNAT',
      );
    });

    it('TC alone (XDP fell back) sends DSR flows with the option too', () => {
      programService(tc, S.nodePortRemote);
      const t = runTc('ingress', tcp('S')(client(30082)));
      assert.equal(t.retval, TcAction.REDIRECT);
      assertPacket(
        t.data,
        tcp('S')({
          src: CLIENT,
          sport: 40000,
          dst: POD_B,
          dport: 8080,
          ttl: 63,
          eth: toNodeB,
          options: dsrOption(NODE, 30082),
        }),
        'to node B',
      );
    });
  });

  describe('hybrid', () => {
    it('TCP by DSR, UDP by SNAT', () => {
      programService(tc, S.nodePortRemote);
      programService(tc, S.lbUdpRemote);
      const t = run('hybrid', tcp('S')(client(30082)));
      assert.equal(t.retval, XdpAction.TX);
      assertPacket(
        t.data,
        tcp('S')({
          src: CLIENT,
          sport: 40000,
          dst: POD_B,
          dport: 8080,
          ttl: 63,
          eth: toNodeB,
          options: dsrOption(NODE, 30082),
        }),
        'TCP',
      );
      const p = { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 };
      const u = run('hybrid', udp()(p));
      assert.equal(u.retval, XdpAction.TX);
      const e = entry(forwardKey(p, IPPROTO.UDP));
      assert.equal(e.flags, CtFlag.SNAT);
      assertPacket(
        u.data,
        udp()({ src: NODE, sport: e.snat_port, dst: POD_B, dport: 5353, ttl: 63, eth: toNodeB }),
        'UDP',
      );
    });
  });

  describe('passed, dropped', () => {
    const syn = (over: Partial<PacketSpec> = {}): Buffer =>
      buildPacket({ ...tcp('S')(client(30082)), ...over });
    const withByte = (buf: Buffer, at: number, value: number): Buffer => {
      const copy = Buffer.from(buf);
      copy[at] = value;
      return copy;
    };
    const ip = { src: CLIENT, dst: NODE };
    const rows: [string, () => Buffer, number, string | null][] = [
      [
        'ARP',
        () => buildPacket({ eth: { type: 0x0806 }, payload: Buffer.alloc(28) }),
        XdpAction.PASS,
        null,
      ],
      [
        'TCP to no frontend',
        () => syn({ tcp: { sport: 1, dport: 22, flags: 'S' } }),
        XdpAction.PASS,
        null,
      ],
      [
        'GRE',
        () => buildPacket({ ipv4: { ...ip, protocol: 47 }, payload: Buffer.alloc(8) }),
        XdpAction.PASS,
        null,
      ],
      [
        'ICMP echo',
        () => buildPacket({ ipv4: ip, icmp: { type: 8, code: 0 }, payload: 'ping' }),
        XdpAction.PASS,
        null,
      ],
      ['IPv4 header length 15', () => withByte(syn(), 14, 0x4f), XdpAction.DROP, 'DROP_MALFORMED'],
      [
        'version 6 in an IPv4 frame',
        () => withByte(syn(), 14, 0x65),
        XdpAction.DROP,
        'DROP_MALFORMED',
      ],
      [
        'total length beyond the frame',
        () => syn({ ipv4: { ...ip, totalLength: 400 } }),
        XdpAction.DROP,
        'DROP_MALFORMED',
      ],
      [
        'TCP data offset 4',
        () => syn({ tcp: { sport: 40000, dport: 30082, flags: 'S', dataOffset: 4 } }),
        XdpAction.DROP,
        'DROP_MALFORMED',
      ],
      [
        'a UDP header cut at 6 bytes',
        () =>
          buildPacket({
            ipv4: { ...ip, protocol: 17 },
            payload: Buffer.from([0x13, 0x88, 0x75, 0x80, 0, 14]),
          }),
        XdpAction.DROP,
        'DROP_MALFORMED',
      ],
      [
        'a first fragment to a frontend',
        () => syn({ ipv4: { ...ip, flags: { mf: true } } }),
        XdpAction.DROP,
        'DROP_FRAGMENT',
      ],
      [
        'a first fragment to no frontend',
        () =>
          syn({ ipv4: { ...ip, flags: { mf: true } }, tcp: { sport: 1, dport: 22, flags: 'S' } }),
        XdpAction.PASS,
        null,
      ],
      [
        'a later fragment',
        () =>
          buildPacket({
            ipv4: { ...ip, protocol: 6, fragOffset: 185 },
            payload: 'rest of the segment',
          }),
        XdpAction.PASS,
        null,
      ],
      [
        'a service without endpoints: left to TC (reject)',
        () => syn({ tcp: { sport: 40000, dport: 30092, flags: 'S' } }),
        XdpAction.PASS,
        null,
      ],
    ];
    for (const [name, frame, action, verdict] of rows) {
      it(name, () => {
        programService(tc, S.nodePortRemote);
        programService(tc, S.clusterEmpty);
        const data = frame();
        const r = xdpTestRun(ns, xdp.snat.program('lb_xdp'), data);
        assert.equal(r.retval, action);
        if (action === XdpAction.PASS) assert.ok(r.data.equals(data), 'untouched');
        // Passed packets are TC's to count; drops are counted here.
        assert.deepEqual(counted(), verdict ? { [verdict]: 1 } : {});
        assert.equal(tc.maps.ct4.lookupBatch().length, 0, 'no conntrack entry');
      });
    }
  });
});
