/**
 * The TC load balancer (bpf/lb_tc.c) run by the kernel with BPF_PROG_TEST_RUN on crafted frames,
 * Katran-style: input packet -> expected packet (byte for byte, so every checksum too) +
 * verdict + counters + conntrack entries. Runs happen inside a scratch namespace whose routes and
 * neighbours make the FIB answers exact (lb-tc-harness.ts).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { TcAction } from '../bpf/testrun.js';
import type { PacketSpec } from '../packet/index.js';
import { buildInnerIp, buildPacket, checksumErrors, parsePacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { IPPROTO, LbServiceFlag } from './lb.js';
import type { Ct4EntryValue, Ct4KeyValue, VerdictName } from './lb-tc.js';
import {
  CtDir,
  CtFlag,
  CtState,
  DEFAULT_CT_TIMEOUTS,
  DEFAULT_SNAT_PORTS,
  lbTcRodata,
  lbTcSpec,
  readFlows,
  readVerdicts,
} from './lb-tc.js';
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
  NODE_B,
  POD,
  POD_B,
  POD_B2,
  POD_UNRESOLVED,
  programService,
  ROUTER,
} from './lb-tc-harness.js';
import { assertPacket } from '../testing/packets.js';

type LbTcObject = BpfObject<typeof lbTcSpec.maps>;
type Hook = 'ingress' | 'egress';

/** One packet's addressing; everything else about it is fixed by the builder. */
interface Pkt {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  ttl?: number;
  eth?: { src: string; dst: string };
}
type Build = (p: Pkt) => PacketSpec;

const frameEth = { src: MAC.frameSrc, dst: MAC.frameDst };

function tcp(flags: string, payload?: string): Build {
  return (p) => ({
    eth: p.eth ?? frameEth,
    ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64, id: 0x1234, flags: { df: true } },
    tcp: {
      sport: p.sport,
      dport: p.dport,
      flags,
      seq: 1000,
      ack: flags.includes('A') ? 5000 : 0,
      ...(flags.includes('S') ? { options: [{ kind: 'mss', value: 1460 } as const] } : {}),
    },
    ...(payload === undefined ? {} : { payload }),
  });
}

function udp(opts: { noChecksum?: boolean; payload?: string } = {}): Build {
  return (p) => ({
    eth: p.eth ?? frameEth,
    ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64, id: 0x4321 },
    udp: { sport: p.sport, dport: p.dport, ...(opts.noChecksum ? { checksum: 0 } : {}) },
    payload: opts.payload ?? 'query',
  });
}

/** The same packet after one forwarding hop out of the program. */
const hop = (p: Pkt, changes: Partial<Pkt>): Pkt => ({ ...p, ttl: (p.ttl ?? 64) - 1, ...changes });
const toPod = { src: MAC.p1, dst: MAC.pod };
const toNodeB = { src: MAC.fab0, dst: MAC.nodeB };
const toClient = { src: MAC.fab0, dst: MAC.client };

const S = {
  nodePortLocal: {
    serviceId: 1,
    frontend: { address: NODE, port: 30080 },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 11, address: POD, port: 8080, local: true }],
  },
  nodePortUnresolved: {
    serviceId: 2,
    frontend: { address: NODE, port: 30081 },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 21, address: POD_UNRESOLVED, port: 8080, local: true }],
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
  nodePortUdpLocal: {
    serviceId: 5,
    frontend: { address: NODE, port: 30053, proto: 'udp' },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 51, address: POD, port: 5353, local: true }],
  },
  clusterIpRemote: {
    serviceId: 6,
    frontend: { address: CLUSTER_IP, port: 80, scope: 'internal' },
    flags: LbServiceFlag.CLUSTER_IP,
    backends: [{ id: 61, address: POD_B, port: 8080 }],
  },
  localOnly: {
    serviceId: 7,
    frontend: { address: NODE, port: 30090 },
    flags: LbServiceFlag.NODEPORT | LbServiceFlag.LOCAL_ONLY,
    backends: [{ id: 71, address: POD, port: 8080, local: true }],
  },
  localOnlyEmpty: {
    serviceId: 8,
    frontend: { address: NODE, port: 30091 },
    flags: LbServiceFlag.NODEPORT | LbServiceFlag.LOCAL_ONLY,
    backends: [],
  },
  clusterEmpty: {
    serviceId: 9,
    frontend: { address: NODE, port: 30092 },
    flags: LbServiceFlag.NODEPORT,
    backends: [],
  },
  hairpin: {
    serviceId: 12,
    frontend: { address: CLUSTER_IP, port: 81, scope: 'internal' },
    flags: LbServiceFlag.CLUSTER_IP,
    backends: [{ id: 121, address: POD, port: 8080, local: true }],
  },
  hostBackend: {
    serviceId: 13,
    frontend: { address: NODE, port: 30094 },
    flags: LbServiceFlag.NODEPORT,
    backends: [{ id: 131, address: NODE, port: 10250, local: true }],
  },
} satisfies Record<string, ServiceSpec>;

interface Case {
  name: string;
  services: ServiceSpec[];
  /** Extra map writes after the services. */
  setup?: (obj: LbTcObject) => void;
  hook?: Hook;
  dev?: 'fab0' | 'p1';
  build: Build;
  in: Pkt;
  verdict: number;
  /** The packet that comes out, given the flow's entry (its SNAT port is random); null: untouched. */
  out: ((e: Ct4EntryValue) => Pkt) | null;
  counted: VerdictName[];
  /** Expected fields of the flow's conntrack entries; null: no entry. */
  entry: Partial<Ct4EntryValue> | null;
}

const fromClient = (dport: number, dst = NODE): Pkt => ({ src: CLIENT, sport: 40000, dst, dport });

const cases: Case[] = [
  {
    name: 'NodePort SYN from outside -> local backend: DNAT, redirected to the pod veth',
    services: [S.nodePortLocal],
    build: tcp('S'),
    in: fromClient(30080),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30080), { dst: POD, dport: 8080, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: {
      backend_addr: POD,
      backend_port: 8080,
      snat_addr: CLIENT,
      snat_port: 40000,
      state: CtState.SYN_SENT,
      flags: 0,
      rev_nat_id: 1,
      backend_id: 11,
    },
  },
  {
    name: 'NodePort SYN -> local backend without a resolved neighbour: bpf_redirect_neigh',
    services: [S.nodePortUnresolved],
    build: tcp('S'),
    in: fromClient(30081),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30081), { dst: POD_UNRESOLVED, dport: 8080 }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT_NEIGH'],
    entry: { backend_addr: POD_UNRESOLVED, flags: 0, state: CtState.SYN_SENT },
  },
  {
    name: 'NodePort SYN -> backend on another node: DNAT + SNAT to the node address',
    services: [S.nodePortRemote],
    build: tcp('S'),
    in: fromClient(30082),
    verdict: TcAction.REDIRECT,
    out: (e) =>
      hop(fromClient(30082), {
        src: NODE,
        sport: e.snat_port,
        dst: POD_B,
        dport: 8080,
        eth: toNodeB,
      }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { backend_addr: POD_B, snat_addr: NODE, flags: CtFlag.SNAT, state: CtState.SYN_SENT },
  },
  {
    name: 'LoadBalancer UDP with a checksum -> remote backend: DNAT + SNAT, checksum updated',
    services: [S.lbUdpRemote],
    build: udp(),
    in: { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 },
    verdict: TcAction.REDIRECT,
    out: (e) => ({
      src: NODE,
      sport: e.snat_port,
      dst: POD_B,
      dport: 5353,
      ttl: 63,
      eth: toNodeB,
    }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { state: CtState.NONE, flags: CtFlag.SNAT, frontend_addr: LB_IP, frontend_port: 53 },
  },
  {
    name: 'LoadBalancer UDP without a checksum -> remote backend: the checksum stays 0',
    services: [S.lbUdpRemote],
    build: udp({ noChecksum: true }),
    in: { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 },
    verdict: TcAction.REDIRECT,
    out: (e) => ({
      src: NODE,
      sport: e.snat_port,
      dst: POD_B,
      dport: 5353,
      ttl: 63,
      eth: toNodeB,
    }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: CtFlag.SNAT },
  },
  {
    name: 'NodePort UDP with a checksum -> local backend',
    services: [S.nodePortUdpLocal],
    build: udp(),
    in: fromClient(30053),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30053), { dst: POD, dport: 5353, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: 0, state: CtState.NONE },
  },
  {
    name: 'NodePort UDP without a checksum -> local backend: the checksum stays 0',
    services: [S.nodePortUdpLocal],
    build: udp({ noChecksum: true }),
    in: fromClient(30053),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30053), { dst: POD, dport: 5353, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: 0 },
  },
  {
    name: 'ClusterIP from a local pod (bypassed the socket hooks) -> remote backend: DNAT only',
    services: [S.clusterIpRemote],
    dev: 'p1',
    build: tcp('S'),
    in: { src: POD, sport: 33000, dst: CLUSTER_IP, dport: 80 },
    verdict: TcAction.REDIRECT,
    out: () => ({ src: POD, sport: 33000, dst: POD_B, dport: 8080, ttl: 63, eth: toNodeB }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: 0, snat_addr: POD },
  },
  {
    name: 'ClusterIP from outside the cluster CIDR -> remote backend: SNAT (kube-proxy masquerades)',
    services: [S.clusterIpRemote],
    build: tcp('S'),
    in: fromClient(80, CLUSTER_IP),
    verdict: TcAction.REDIRECT,
    out: (e) =>
      hop(fromClient(80, CLUSTER_IP), {
        src: NODE,
        sport: e.snat_port,
        dst: POD_B,
        dport: 8080,
        eth: toNodeB,
      }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: CtFlag.SNAT },
  },
  {
    name: 'host-originated ClusterIP traffic at egress -> remote backend: DNAT, rerouted',
    services: [S.clusterIpRemote],
    hook: 'egress',
    build: tcp('S'),
    in: { src: NODE, sport: 45000, dst: CLUSTER_IP, dport: 80 },
    verdict: TcAction.REDIRECT,
    out: () => ({ src: NODE, sport: 45000, dst: POD_B, dport: 8080, ttl: 63, eth: toNodeB }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: 0 },
  },
  {
    name: 'externalTrafficPolicy Local -> local backend: no SNAT, client address kept',
    services: [S.localOnly],
    build: tcp('S'),
    in: fromClient(30090),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30090), { dst: POD, dport: 8080, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: 0, snat_addr: CLIENT },
  },
  {
    name: 'externalTrafficPolicy Local with no local endpoint: dropped, counted',
    services: [S.localOnlyEmpty],
    build: tcp('S'),
    in: fromClient(30091),
    verdict: TcAction.SHOT,
    out: null,
    counted: ['DROP_NO_LOCAL_BACKEND'],
    entry: null,
  },
  {
    name: 'a slot naming a backend that is not written: dropped, counted',
    services: [S.nodePortRemote],
    setup: (obj) => obj.maps.lb4_backends.delete(31),
    build: tcp('S'),
    in: fromClient(30082),
    verdict: TcAction.SHOT,
    out: null,
    counted: ['DROP_BACKEND_MISSING'],
    entry: null,
  },
  {
    name: 'hairpin: a pod reaching itself through its ClusterIP is SNATed to the node',
    services: [S.hairpin],
    dev: 'p1',
    build: tcp('S'),
    in: { src: POD, sport: 33001, dst: CLUSTER_IP, dport: 81 },
    verdict: TcAction.REDIRECT,
    out: (e) => ({ src: NODE, sport: e.snat_port, dst: POD, dport: 8080, ttl: 63, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: CtFlag.SNAT },
  },
  {
    name: 'a host-network backend on this node: DNAT, then the stack delivers it locally',
    services: [S.hostBackend],
    build: tcp('S'),
    in: fromClient(30094),
    verdict: TcAction.OK,
    out: () => ({ ...fromClient(30094), dst: NODE, dport: 10250 }),
    counted: ['NEW_FLOW', 'DELIVER_STACK'],
    entry: { flags: 0, backend_addr: NODE },
  },
  {
    name: 'TTL 1: translated, left to the stack to send time exceeded',
    services: [S.nodePortLocal],
    build: tcp('S'),
    in: { ...fromClient(30080), ttl: 1 },
    verdict: TcAction.OK,
    out: () => ({ ...fromClient(30080), ttl: 1, dst: POD, dport: 8080 }),
    counted: ['NEW_FLOW', 'DELIVER_TTL'],
    entry: { state: CtState.SYN_SENT },
  },
  {
    name: 'IPv4 options before TCP: offsets follow the header length',
    services: [S.nodePortRemote],
    build: (p) => {
      const spec = tcp('S')(p);
      return {
        ...spec,
        ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64, options: Buffer.from([0x94, 4, 0, 0]) },
      };
    },
    in: fromClient(30082),
    verdict: TcAction.REDIRECT,
    out: (e) =>
      hop(fromClient(30082), {
        src: NODE,
        sport: e.snat_port,
        dst: POD_B,
        dport: 8080,
        eth: toNodeB,
      }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { flags: CtFlag.SNAT },
  },
  {
    name: 'not a service: passed untouched',
    services: [S.nodePortLocal],
    build: tcp('S'),
    in: fromClient(22),
    verdict: TcAction.OK,
    out: null,
    counted: ['PASS_NO_SERVICE'],
    entry: null,
  },
  {
    // The control plane refuses such a Service (validate.ts); the datapath does not look.
    name: 'a frontend inside the cluster CIDR: never balanced (packets to pods skip the lookups)',
    services: [
      {
        serviceId: 15,
        frontend: { address: POD_B2, port: 80 },
        flags: LbServiceFlag.LOADBALANCER,
        backends: [{ id: 151, address: POD, port: 8080, local: true }],
      },
    ],
    build: tcp('S'),
    in: fromClient(80, POD_B2),
    verdict: TcAction.OK,
    out: null,
    counted: ['PASS_NO_SERVICE'],
    entry: null,
  },
  {
    name: 'a TCP RST to a frontend with no flow: passed untouched, no entry',
    services: [S.nodePortLocal],
    build: tcp('R'),
    in: fromClient(30080),
    verdict: TcAction.OK,
    out: null,
    counted: ['PASS_TCP_RST'],
    entry: null,
  },
  {
    name: 'a mid-stream ACK with no flow (entries lost): picked up as established',
    services: [S.nodePortLocal],
    build: tcp('A', 'data'),
    in: fromClient(30080),
    verdict: TcAction.REDIRECT,
    out: () => hop(fromClient(30080), { dst: POD, dport: 8080, eth: toPod }),
    counted: ['NEW_FLOW', 'DELIVER_REDIRECT'],
    entry: { state: CtState.ESTABLISHED },
  },
];

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

const protoOf = (spec: PacketSpec): number => (spec.udp ? IPPROTO.UDP : IPPROTO.TCP);
const nowNs = (): bigint => process.hrtime.bigint();
const SEC = 1_000_000_000n;

describe('lb_tc: per-packet load balancing at TC', () => {
  let ns: LbTcNetns;
  let obj: LbTcObject;

  before(() => {
    requireKernel();
    ns = createLbTcNetns();
    obj = loadObject(lbTcSpec, {
      rodata: lbTcRodata({ nodeIPv4: NODE, clusterCidr: CLUSTER_CIDR }),
    });
  });
  after(() => {
    obj?.close();
    ns?.destroy();
  });
  beforeEach(() => clearMaps(obj));

  function send(hook: Hook, spec: PacketSpec, dev: 'fab0' | 'p1' = 'fab0') {
    const prog = obj.program(hook === 'ingress' ? 'lb_tc_ingress' : 'lb_tc_egress');
    return ns.testRun(prog, buildPacket(spec), { dev });
  }

  /** Verdict counters that moved, by name (packets). */
  function counted(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, c] of Object.entries(readVerdicts(obj.maps.verdict_stats))) {
      out[name] = Number(c.packets);
    }
    return out;
  }

  /** Both entries of a flow: they must be equal, and are returned once. */
  function flow(key: Ct4KeyValue): Ct4EntryValue {
    const fwd = obj.maps.ct4.lookup(key);
    assert.ok(fwd, 'the FORWARD entry exists');
    const rev = obj.maps.ct4.lookup(replyKey(fwd, key.proto));
    assert.ok(rev, 'the REPLY entry exists');
    assert.deepEqual(rev, fwd, 'both directions hold the same entry');
    return fwd;
  }

  describe('new flows (input packet -> expected packet + verdict)', () => {
    for (const c of cases) {
      it(c.name, () => {
        for (const s of c.services) programService(obj, s);
        c.setup?.(obj);
        const spec = c.build(c.in);
        assert.deepEqual(checksumErrors(buildPacket(spec)), [], 'the input is valid');
        const before = nowNs();
        const r = send(c.hook ?? 'ingress', spec, c.dev);
        assert.equal(r.retval, c.verdict, 'verdict');
        const proto = protoOf(spec);
        const key = forwardKey(c.in, proto);
        if (c.entry === null) {
          assert.equal(obj.maps.ct4.lookup(key), undefined, 'no conntrack entry');
          assert.equal(obj.maps.ct4.lookupBatch().length, 0, 'conntrack is empty');
        }
        const e = c.entry === null ? undefined : flow(key);
        if (e) {
          assert.deepEqual({ ...e, ...c.entry }, e, 'entry fields');
          assert.equal(e.client_addr, c.in.src);
          assert.equal(e.client_port, c.in.sport);
          assert.equal(e.frontend_addr, c.in.dst);
          assert.equal(e.frontend_port, c.in.dport);
          const timeout =
            proto === IPPROTO.UDP
              ? DEFAULT_CT_TIMEOUTS.udp
              : e.state === CtState.SYN_SENT
                ? DEFAULT_CT_TIMEOUTS.tcpSyn
                : DEFAULT_CT_TIMEOUTS.tcpEstablished;
          assert.ok(e.created_ns >= before && e.created_ns <= nowNs(), 'created now');
          assert.equal(e.expires_ns - e.created_ns, BigInt(timeout) * SEC, 'lifetime');
          if (e.flags & CtFlag.SNAT) {
            assert.ok(
              e.snat_port >= DEFAULT_SNAT_PORTS.min && e.snat_port <= DEFAULT_SNAT_PORTS.max,
            );
          }
        }
        if (c.out === null) {
          assert.ok(r.data.equals(buildPacket(spec)), 'the packet is untouched');
        } else {
          assert.ok(e, 'a translated packet has an entry');
          assertPacket(r.data, c.build(c.out(e)), 'output');
        }
        const expected = Object.fromEntries(c.counted.map((n) => [n, 1]));
        assert.deepEqual(counted(), expected, 'counters');
      });
    }
  });

  describe('conntrack', () => {
    const TCP = IPPROTO.TCP;

    /** Asserts the flow's state and that its lifetime was just set to `seconds`. */
    function assertState(
      key: Ct4KeyValue,
      state: number,
      flags: number,
      seconds: number,
      since: bigint,
    ) {
      const e = flow(key);
      assert.equal(e.state, state, 'state');
      assert.equal(e.flags, flags, 'flags');
      const lifetime = BigInt(seconds) * SEC;
      assert.ok(e.expires_ns >= since + lifetime && e.expires_ns <= nowNs() + lifetime, 'lifetime');
      return e;
    }

    it('a TCP flow via a remote backend: SYN_SENT -> ESTABLISHED -> FIN -> CLOSE, replies reverse-translated', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      const key = forwardKey(client, TCP);
      let t = nowNs();
      assert.equal(send('ingress', tcp('S')(client)).retval, TcAction.REDIRECT);
      const e = assertState(key, CtState.SYN_SENT, CtFlag.SNAT, DEFAULT_CT_TIMEOUTS.tcpSyn, t);
      // What the backend sends, as it arrives on the uplink, and what the client must receive.
      const backend: Pkt = { src: POD_B, sport: 8080, dst: NODE, dport: e.snat_port };
      const toClientPkt = hop(backend, {
        src: NODE,
        sport: 30082,
        dst: CLIENT,
        dport: 40000,
        eth: toClient,
      });
      const toBackendPkt = hop(client, {
        src: NODE,
        sport: e.snat_port,
        dst: POD_B,
        dport: 8080,
        eth: toNodeB,
      });

      t = nowNs();
      let r = send('ingress', tcp('SA')(backend));
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(r.data, tcp('SA')(toClientPkt), 'SYN-ACK to the client: src = node:nodePort');
      const established = CtFlag.SNAT | CtFlag.SEEN_REPLY;
      assertState(key, CtState.ESTABLISHED, established, DEFAULT_CT_TIMEOUTS.tcpEstablished, t);

      r = send('ingress', tcp('A', 'GET / HTTP/1.1')(client));
      assertPacket(r.data, tcp('A', 'GET / HTTP/1.1')(toBackendPkt), 'data to the backend');
      r = send('ingress', tcp('A', 'HTTP/1.1 200 OK')(backend));
      assertPacket(r.data, tcp('A', 'HTTP/1.1 200 OK')(toClientPkt), 'data to the client');
      assertState(key, CtState.ESTABLISHED, established, DEFAULT_CT_TIMEOUTS.tcpEstablished, t);

      t = nowNs();
      r = send('ingress', tcp('FA')(client));
      assertPacket(r.data, tcp('FA')(toBackendPkt), 'FIN to the backend');
      assertState(
        key,
        CtState.FIN,
        established | CtFlag.FIN_FORWARD,
        DEFAULT_CT_TIMEOUTS.tcpFin,
        t,
      );

      t = nowNs();
      r = send('ingress', tcp('FA')(backend));
      assertPacket(r.data, tcp('FA')(toClientPkt), 'FIN to the client');
      const closed = established | CtFlag.FIN_FORWARD | CtFlag.FIN_REPLY;
      assertState(key, CtState.CLOSE, closed, DEFAULT_CT_TIMEOUTS.tcpClose, t);

      r = send('ingress', tcp('A')(client));
      assertPacket(r.data, tcp('A')(toBackendPkt), 'the last ACK still goes through');
      assertState(key, CtState.CLOSE, closed, DEFAULT_CT_TIMEOUTS.tcpClose, t);
      assert.deepEqual(counted(), { NEW_FLOW: 1, CT_FORWARD: 3, CT_REPLY: 3, DELIVER_REDIRECT: 7 });
      const [listed, ...more] = readFlows(obj.maps.ct4.entries());
      assert.equal(more.length, 0, 'one flow listed for its two entries');
      assert.deepEqual(
        { ...listed, expiresInSec: 0 },
        {
          proto: 'tcp',
          client: `${CLIENT}:40000`,
          frontend: `${NODE}:30082`,
          backend: `${POD_B}:8080`,
          snat: `${NODE}:${e.snat_port}`,
          state: 'CLOSE',
          seenReply: true,
          expiresInSec: 0,
          revNatId: 3,
          backendId: 31,
        },
      );
    });

    it('a RST from either side closes the flow', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      const key = forwardKey(client, TCP);
      send('ingress', tcp('S')(client));
      const e = flow(key);
      const t = nowNs();
      const r = send(
        'ingress',
        tcp('RA')({ src: POD_B, sport: 8080, dst: NODE, dport: e.snat_port }),
      );
      assert.equal(r.retval, TcAction.REDIRECT, 'the RST reaches the client');
      assertState(
        key,
        CtState.CLOSE,
        CtFlag.SNAT | CtFlag.SEEN_REPLY,
        DEFAULT_CT_TIMEOUTS.tcpClose,
        t,
      );
    });

    it('replies of a local backend: at the pod veth (redirected) and at the uplink egress (to the stack)', () => {
      programService(obj, S.nodePortLocal);
      const client = fromClient(30080);
      send('ingress', tcp('S')(client));
      const pod: Pkt = { src: POD, sport: 8080, dst: CLIENT, dport: 40000 };
      let r = send('ingress', tcp('SA')(pod), 'p1');
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(
        r.data,
        tcp('SA')(hop(pod, { src: NODE, sport: 30080, eth: toClient })),
        'at p1 ingress',
      );
      r = send('egress', tcp('A', 'reply')(pod));
      assert.equal(r.retval, TcAction.OK);
      assertPacket(
        r.data,
        tcp('A', 'reply')({ ...pod, src: NODE, sport: 30080 }),
        'at fab0 egress',
      );
      assert.equal(flow(forwardKey(client, TCP)).state, CtState.ESTABLISHED);
      assert.deepEqual(counted(), {
        NEW_FLOW: 1,
        CT_REPLY: 2,
        DELIVER_REDIRECT: 2,
        DELIVER_STACK: 1,
      });
    });

    it("a reply to a local pod's ClusterIP flow, addressed to the pod: found as a REPLY, reverse-translated", () => {
      programService(obj, S.clusterIpRemote);
      const client: Pkt = { src: POD, sport: 33000, dst: CLUSTER_IP, dport: 80 };
      assert.equal(send('ingress', tcp('S')(client), 'p1').retval, TcAction.REDIRECT);
      const backend: Pkt = { src: POD_B, sport: 8080, dst: POD, dport: 33000 };
      const r = send('ingress', tcp('SA')(backend));
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(
        r.data,
        tcp('SA')(hop(backend, { src: CLUSTER_IP, sport: 80, eth: toPod })),
        'to the pod, from the ClusterIP',
      );
      assert.equal(flow(forwardKey(client, TCP)).state, CtState.ESTABLISHED);
      assert.deepEqual(counted(), { NEW_FLOW: 1, CT_REPLY: 1, DELIVER_REDIRECT: 2 });
    });

    it('a new SYN on a closed flow (port reuse) makes a new flow and retires the old REPLY entry', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      const key = forwardKey(client, TCP);
      send('ingress', tcp('S')(client));
      const old = flow(key);
      const backend: Pkt = { src: POD_B, sport: 8080, dst: NODE, dport: old.snat_port };
      send('ingress', tcp('RA')(backend));
      assert.equal(flow(key).state, CtState.CLOSE);
      const r = send('ingress', tcp('S')(client));
      assert.equal(r.retval, TcAction.REDIRECT);
      const fresh = flow(key);
      assert.equal(fresh.state, CtState.SYN_SENT);
      assert.ok(fresh.created_ns > old.created_ns, 'a new entry');
      if (fresh.snat_port !== old.snat_port) {
        assert.equal(
          obj.maps.ct4.lookup(replyKey(old, TCP)),
          undefined,
          'the old REPLY entry is gone',
        );
      }
      assert.equal(obj.maps.ct4.lookupBatch().length, 2, 'two entries: one flow');
      assert.equal(counted().NEW_FLOW, 2);
    });

    it('make-before-break: a flow keeps its backend after the agent removes it; new flows get the new one', () => {
      programService(obj, S.nodePortRemote);
      const first = fromClient(30082);
      send('ingress', tcp('S')(first));
      const e = flow(forwardKey(first, TCP));
      assert.equal(e.backend_addr, POD_B);
      // The agent replaces backend 31 by 32 and deletes 31.
      obj.maps.lb4_backends.update(32, {
        address: POD_B2,
        port: 8080,
        proto: TCP,
        flags: 0,
        node_address: NODE_B,
      });
      obj.maps.lb_slots.update({ service_id: 3, slot: 1 }, 32);
      obj.maps.lb4_backends.delete(31);

      const r = send('ingress', tcp('A', 'more')(first));
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(
        r.data,
        tcp(
          'A',
          'more',
        )(hop(first, { src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080, eth: toNodeB })),
        'the established flow still goes to the removed backend',
      );
      const second = { ...first, sport: 40001 };
      send('ingress', tcp('S')(second));
      assert.equal(
        flow(forwardKey(second, TCP)).backend_addr,
        POD_B2,
        'a new flow picks the new backend',
      );
    });

    it('an expired entry is not used: the next packet is a new flow, a late reply is not translated', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      const key = forwardKey(client, TCP);
      send('ingress', tcp('S')(client));
      const e = flow(key);
      const dead = { ...e, expires_ns: nowNs() - 1n };
      obj.maps.ct4.update(key, dead);
      obj.maps.ct4.update(replyKey(e, TCP), dead);

      const reply = tcp('SA')({ src: POD_B, sport: 8080, dst: NODE, dport: e.snat_port });
      let r = send('ingress', reply);
      assert.equal(r.retval, TcAction.OK);
      assert.ok(r.data.equals(buildPacket(reply)), 'the late reply is untouched');

      r = send('ingress', tcp('S')(client));
      assert.equal(r.retval, TcAction.REDIRECT);
      assert.ok(flow(key).created_ns > e.created_ns, 'the retransmitted SYN made a new flow');
      assert.deepEqual(counted(), { NEW_FLOW: 2, DELIVER_REDIRECT: 2, PASS_NO_SERVICE: 1 });
    });

    it('the same client port to two frontends of one backend: the second flow gets another source port (reply clash)', () => {
      programService(obj, S.nodePortLocal);
      programService(obj, {
        serviceId: 14,
        frontend: { address: LB_IP, port: 80 },
        flags: LbServiceFlag.LOADBALANCER,
        backends: [{ id: 11, address: POD, port: 8080, local: true }],
      });
      // The first flow ends; its entries live on for the close timeout, holding the REPLY key
      // (pod:8080 -> client:40000) that the client's next connection, to the other frontend
      // from the same port, would need too.
      const first = fromClient(30080);
      const pod: Pkt = { src: POD, sport: 8080, dst: CLIENT, dport: 40000 };
      send('ingress', tcp('S')(first));
      send('ingress', tcp('FA')(first));
      send('ingress', tcp('FA')(pod), 'p1');
      assert.equal(flow(forwardKey(first, TCP)).state, CtState.CLOSE);

      const second = fromClient(80, LB_IP);
      let r = send('ingress', tcp('S')(second));
      assert.equal(r.retval, TcAction.REDIRECT, 'the second flow is not dropped');
      const e = flow(forwardKey(second, TCP));
      assert.equal(e.flags, CtFlag.SNAT);
      assert.equal(e.snat_addr, CLIENT, 'the client keeps its address');
      assert.ok(
        e.snat_port >= 61000 && e.snat_port <= 65535,
        `port ${e.snat_port} from the SNAT range`,
      );
      assertPacket(
        r.data,
        tcp('S')(hop(second, { sport: e.snat_port, dst: POD, dport: 8080, eth: toPod })),
        'to the pod from the new port',
      );
      r = send('ingress', tcp('SA')({ ...pod, dport: e.snat_port }), 'p1');
      assertPacket(
        r.data,
        tcp('SA')(hop(pod, { src: LB_IP, sport: 80, eth: toClient })),
        "the reply reaches the client's port, from the frontend it connected to",
      );
      assert.equal(
        flow(forwardKey(first, TCP)).state,
        CtState.CLOSE,
        'the first flow is left alone',
      );
      assert.equal(counted().DROP_CT_CLASH, undefined);
    });
  });

  describe('backend selection', () => {
    const backends = [POD_B, POD_B2, '198.18.17.9', '198.18.17.10'].map((address, i) => ({
      id: 100 + i,
      address,
      port: 8080,
    }));

    function flowsFrom(count: number): Set<string> {
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) {
        const c = { ...fromClient(30100), sport: 41000 + i };
        assert.equal(send('ingress', tcp('S')(c)).retval, TcAction.REDIRECT);
        seen.add(flow(forwardKey(c, IPPROTO.TCP)).backend_addr);
      }
      return seen;
    }

    it('ClientIP affinity: every new flow of a client goes to the same backend', () => {
      programService(obj, {
        serviceId: 20,
        frontend: { address: NODE, port: 30100 },
        flags: LbServiceFlag.NODEPORT | LbServiceFlag.AFFINITY,
        affinityTimeout: 10800,
        backends,
      });
      const seen = flowsFrom(16);
      assert.equal(seen.size, 1, `one backend for 16 flows, got ${[...seen].join(', ')}`);
      const affinity = [...obj.maps.lb4_affinity.entries()];
      assert.equal(affinity.length, 1);
      const [key, value] = affinity[0]!;
      assert.equal(key.client_address, CLIENT);
      assert.equal(key.service_id, 20);
      const chosen = backends.find((b) => b.id === value.backend_id);
      assert.equal(chosen?.address, [...seen][0]);
    });

    it('without affinity, flows spread over the backends', () => {
      programService(obj, {
        serviceId: 21,
        frontend: { address: NODE, port: 30100 },
        flags: LbServiceFlag.NODEPORT,
        backends,
      });
      // P(all 32 on one backend) = 4^-31.
      assert.ok(flowsFrom(32).size > 1);
      assert.equal(obj.maps.lb4_affinity.lookupBatch().length, 0);
    });
  });

  describe('ICMP errors about a translated flow', () => {
    const icmp = (
      p: { src: string; dst: string; ttl?: number; eth?: { src: string; dst: string } },
      type: number,
      code: number,
      inner: Buffer,
      rest = 0,
    ): PacketSpec => ({
      eth: p.eth ?? frameEth,
      ipv4: { src: p.src, dst: p.dst, ttl: p.ttl ?? 64 },
      icmp: { type, code, rest, inner },
    });
    const quote = (spec: PacketSpec, l4Bytes: number) => buildInnerIp(spec, { l4Bytes });

    it('port unreachable from a remote backend, quoting a SNATed UDP datagram whole', () => {
      programService(obj, S.lbUdpRemote);
      const client: Pkt = { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 };
      send('ingress', udp()(client));
      const e = flow(forwardKey(client, IPPROTO.UDP));
      const sent = udp()({ src: NODE, sport: e.snat_port, dst: POD_B, dport: 5353, ttl: 63 });
      const error = icmp({ src: POD_B, dst: NODE }, 3, 3, quote(sent, Infinity));
      assert.deepEqual(checksumErrors(buildPacket(error)), []);

      const r = send('ingress', error);
      assert.equal(r.retval, TcAction.REDIRECT);
      // The client sees the error come from the service about exactly what it sent (TTL - 1).
      const original = udp()({ ...client, ttl: 63 });
      const expected = icmp(
        { src: LB_IP, dst: CLIENT, ttl: 63, eth: toClient },
        3,
        3,
        quote(original, Infinity),
      );
      assertPacket(r.data, expected, 'translated error');
      const inner = parsePacket(r.data).icmp?.inner;
      assert.equal(
        inner?.udp?.checksum,
        parsePacket(buildPacket(original)).udp?.checksum,
        'quoted UDP checksum',
      );
      assert.deepEqual(counted(), { NEW_FLOW: 1, ICMP_ERROR: 1, DELIVER_REDIRECT: 2 });
    });

    it('fragmentation needed from a router, quoting a whole TCP header: the quoted checksum is fixed too', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      send('ingress', tcp('S')(client));
      const e = flow(forwardKey(client, IPPROTO.TCP));
      const segment = tcp('A', 'x'.repeat(1400));
      const sent = segment(hop(client, { src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080 }));
      const error = icmp({ src: ROUTER, dst: NODE }, 3, 4, quote(sent, 28), 1400);
      const r = send('ingress', error);
      assert.equal(r.retval, TcAction.REDIRECT);
      const original = segment(hop(client, {}));
      const expected = icmp(
        { src: NODE, dst: CLIENT, ttl: 63, eth: toClient },
        3,
        4,
        quote(original, 28),
        1400,
      );
      assertPacket(r.data, expected, 'translated error');
      assert.equal(parsePacket(r.data).icmp?.mtu, 1400);
    });

    it('time exceeded quoting only 8 bytes of TCP: ports translated, no checksum to fix', () => {
      programService(obj, S.nodePortRemote);
      const client = fromClient(30082);
      send('ingress', tcp('S')(client));
      const e = flow(forwardKey(client, IPPROTO.TCP));
      const sent = tcp('S')(
        hop(client, { src: NODE, sport: e.snat_port, dst: POD_B, dport: 8080, ttl: 1 }),
      );
      const r = send('ingress', icmp({ src: ROUTER, dst: NODE }, 11, 0, quote(sent, 8)));
      assert.equal(r.retval, TcAction.REDIRECT);
      const original = tcp('S')({ ...client, ttl: 1 });
      assertPacket(
        r.data,
        icmp({ src: NODE, dst: CLIENT, ttl: 63, eth: toClient }, 11, 0, quote(original, 8)),
        'error',
      );
    });

    it("this node's own error about a local-backend flow, at egress: back to the frontend's addresses", () => {
      programService(obj, S.nodePortLocal);
      const client = fromClient(30080);
      send('ingress', tcp('S')(client));
      const sent = tcp('S')(hop(client, { dst: POD, dport: 8080 }));
      const r = send('egress', icmp({ src: NODE, dst: CLIENT }, 3, 1, quote(sent, 8)));
      assert.equal(r.retval, TcAction.OK);
      const original = tcp('S')(hop(client, {}));
      assertPacket(r.data, icmp({ src: NODE, dst: CLIENT }, 3, 1, quote(original, 8)), 'error');
      assert.deepEqual(counted(), {
        NEW_FLOW: 1,
        ICMP_ERROR: 1,
        DELIVER_REDIRECT: 1,
        DELIVER_STACK: 1,
      });
    });

    it("the client's error about a reply goes to the backend, as the backend's packet would come back", () => {
      programService(obj, S.lbUdpRemote);
      const client: Pkt = { src: CLIENT, sport: 5000, dst: LB_IP, dport: 53 };
      send('ingress', udp()(client));
      const e = flow(forwardKey(client, IPPROTO.UDP));
      const reply = udp({ payload: 'answer' });
      const received = reply({ src: LB_IP, sport: 53, dst: CLIENT, dport: 5000, ttl: 62 });
      const r = send('ingress', icmp({ src: CLIENT, dst: LB_IP }, 3, 3, quote(received, Infinity)));
      assert.equal(r.retval, TcAction.REDIRECT);
      const backendSent = reply({
        src: POD_B,
        sport: 5353,
        dst: NODE,
        dport: e.snat_port,
        ttl: 62,
      });
      const expected = icmp(
        { src: NODE, dst: POD_B, ttl: 63, eth: toNodeB },
        3,
        3,
        quote(backendSent, Infinity),
      );
      assertPacket(r.data, expected, 'error towards the backend');
    });

    it('errors about no tracked flow, echo, and cut-short quotes pass untouched', () => {
      programService(obj, S.nodePortRemote);
      const unknown = tcp('S')({ src: NODE, sport: 61000, dst: POD_B, dport: 8080 });
      const packets: [PacketSpec, VerdictName][] = [
        [icmp({ src: POD_B, dst: NODE }, 3, 3, quote(unknown, 8)), 'PASS_ICMP'],
        [
          { eth: frameEth, ipv4: { src: CLIENT, dst: NODE }, icmp: { type: 8, id: 1, seq: 1 } },
          'PASS_ICMP',
        ],
        [icmp({ src: POD_B, dst: NODE }, 3, 3, quote(unknown, 4)), 'PASS_MALFORMED'],
      ];
      for (const [spec, verdict] of packets) {
        clearMaps(obj);
        programService(obj, S.nodePortRemote);
        const r = send('ingress', spec);
        assert.equal(r.retval, TcAction.OK);
        assert.ok(r.data.equals(buildPacket(spec)), `${verdict}: untouched`);
        assert.deepEqual(counted(), { [verdict]: 1 });
      }
    });
  });

  describe('services without endpoints (kube-proxy semantics)', () => {
    const rejectOf = (original: PacketSpec, to: { src: string; dst: string }): PacketSpec => ({
      eth: { src: MAC.frameDst, dst: MAC.frameSrc },
      ipv4: { src: to.src, dst: to.dst, ttl: 64, tos: 0xc0 },
      icmp: { type: 3, code: 3, inner: buildInnerIp(original, { l4Bytes: 8 }) },
    });

    it('cluster policy, no endpoint: rejected with ICMP port unreachable, sent back out', () => {
      programService(obj, S.clusterEmpty);
      const syn = tcp('S')(fromClient(30092));
      const r = send('ingress', syn);
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(r.data, rejectOf(syn, { src: NODE, dst: CLIENT }), 'the REJECT');
      assert.deepEqual(counted(), { REJECT_NO_BACKEND: 1 });
      assert.equal(obj.maps.ct4.lookupBatch().length, 0, 'no conntrack entry');
    });

    it('a ClusterIP without endpoint, from this host at egress: the error goes back into the stack', () => {
      const datagram = udp()({ src: NODE, sport: 45001, dst: CLUSTER_IP, dport: 82 });
      programService(obj, {
        ...S.clusterEmpty,
        frontend: { address: CLUSTER_IP, port: 82, proto: 'udp', scope: 'internal' },
        flags: LbServiceFlag.CLUSTER_IP,
      });
      const r = send('egress', datagram);
      assert.equal(r.retval, TcAction.REDIRECT);
      assertPacket(r.data, rejectOf(datagram, { src: CLUSTER_IP, dst: NODE }), 'the REJECT');
    });

    it('externalTrafficPolicy Local without a local endpoint stays a silent drop', () => {
      programService(obj, S.localOnlyEmpty);
      const syn = tcp('S')(fromClient(30091));
      const r = send('ingress', syn);
      assert.equal(r.retval, TcAction.SHOT);
      assert.deepEqual(counted(), { DROP_NO_LOCAL_BACKEND: 1 });
    });

    it('no error for packets with IP options, nor to a multicast source: dropped, counted', () => {
      programService(obj, S.clusterEmpty);
      const withOptions = tcp('S')(fromClient(30092));
      const packets: PacketSpec[] = [
        { ...withOptions, ipv4: { src: CLIENT, dst: NODE, options: Buffer.from([0x94, 4, 0, 0]) } },
        tcp('S')({ ...fromClient(30092), src: '224.0.0.5' }),
      ];
      for (const spec of packets) assert.equal(send('ingress', spec).retval, TcAction.SHOT);
      assert.deepEqual(counted(), { DROP_NO_BACKEND: 2 });
    });
  });

  describe('malformed, truncated and other packets: passed untouched, counted', () => {
    const syn = (over: Partial<PacketSpec> = {}): Buffer =>
      buildPacket({ ...tcp('S')(fromClient(30080)), ...over });
    const withByte = (buf: Buffer, at: number, value: number): Buffer => {
      const copy = Buffer.from(buf);
      copy[at] = value;
      return copy;
    };
    const ip = { src: CLIENT, dst: NODE };
    const rows: [string, Buffer, VerdictName][] = [
      // (A frame cut inside the IPv4 header cannot be test-run: the kernel refuses it.)
      [
        'IPv4 header length 15 with 20 bytes of header',
        withByte(syn(), 14, 0x4f),
        'PASS_MALFORMED',
      ],
      ['IPv4 header length 4', withByte(syn(), 14, 0x44), 'PASS_MALFORMED'],
      ['version 6 in an IPv4 frame', withByte(syn(), 14, 0x65), 'PASS_MALFORMED'],
      [
        'total length beyond the frame',
        syn({ ipv4: { ...ip, totalLength: 400 } }),
        'PASS_MALFORMED',
      ],
      [
        'total length below the header',
        syn({ ipv4: { ...ip, totalLength: 12 } }),
        'PASS_MALFORMED',
      ],
      [
        'a TCP header cut at 10 bytes',
        buildPacket({
          ipv4: { ...ip, protocol: 6 },
          payload: Buffer.from([0x9c, 0x40, 0x75, 0x80, 0, 0, 0, 0, 0, 0]),
        }),
        'PASS_MALFORMED',
      ],
      [
        'TCP data offset 4',
        syn({ tcp: { sport: 40000, dport: 30080, flags: 'S', dataOffset: 4 } }),
        'PASS_MALFORMED',
      ],
      [
        'a UDP header cut at 6 bytes',
        buildPacket({
          ipv4: { ...ip, protocol: 17 },
          payload: Buffer.from([0x13, 0x88, 0x75, 0x80, 0, 14]),
        }),
        'PASS_MALFORMED',
      ],
      [
        'an ICMP header cut at 4 bytes',
        buildPacket({ ipv4: { ...ip, protocol: 1 }, payload: Buffer.alloc(4) }),
        'PASS_MALFORMED',
      ],
      [
        'a first fragment to a frontend',
        syn({ ipv4: { ...ip, flags: { mf: true } } }),
        'PASS_FRAGMENT',
      ],
      [
        'a later fragment',
        buildPacket({
          ipv4: { ...ip, protocol: 6, fragOffset: 185 },
          payload: 'rest of the segment',
        }),
        'PASS_FRAGMENT',
      ],
      [
        'GRE',
        buildPacket({ ipv4: { ...ip, protocol: 47 }, payload: Buffer.alloc(8) }),
        'PASS_OTHER_PROTO',
      ],
      ['ARP', buildPacket({ eth: { type: 0x0806 }, payload: Buffer.alloc(28) }), 'PASS_NOT_IPV4'],
      [
        'TCP over IPv6',
        buildPacket({
          ipv6: { src: '2001:db8::1', dst: '2001:db8::2' },
          tcp: { sport: 1, dport: 30080, flags: 'S' },
        }),
        'PASS_NOT_IPV4',
      ],
    ];
    for (const [name, data, verdict] of rows) {
      it(name, () => {
        programService(obj, S.nodePortLocal);
        const r = ns.testRun(obj.program('lb_tc_ingress'), data);
        assert.equal(r.retval, TcAction.OK);
        assert.ok(r.data.equals(data), 'untouched');
        assert.deepEqual(counted(), { [verdict]: 1 });
        assert.equal(obj.maps.ct4.lookupBatch().length, 0, 'no conntrack entry');
        const bytes = readVerdicts(obj.maps.verdict_stats)[verdict]?.bytes;
        assert.equal(bytes, BigInt(data.length), 'bytes counted');
      });
    }
  });
});
