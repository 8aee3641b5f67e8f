/**
 * The TC load balancer's load-time config (.rodata: node address, SNAT ports, conntrack
 * timeouts), its pinned state across a reload, and the TypeScript helpers around the spec.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BPFFS } from '../bpf/environment.js';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { TcAction } from '../bpf/testrun.js';
import type { PacketSpec } from '../packet/index.js';
import { buildPacket, parsePacket } from '../packet/index.js';
import { requireKernel } from '../testing/privileges.js';
import { IPPROTO } from './lb.js';
import type { LbTcConfig } from './lb-tc.js';
import {
  CtDir,
  CtState,
  isDropVerdict,
  lbTcRodata,
  lbTcSpec,
  readVerdicts,
  Verdict,
  verdictName,
} from './lb-tc.js';
import type { LbTcNetns } from './lb-tc-harness.js';
import {
  clearMaps,
  CLIENT,
  createLbTcNetns,
  NODE,
  POD,
  POD_B,
  programService,
} from './lb-tc-harness.js';

type LbTcObject = BpfObject<typeof lbTcSpec.maps>;

const remote = {
  serviceId: 3,
  frontend: { address: NODE, port: 30082 },
  backends: [{ id: 31, address: POD_B, port: 8080 }],
};
const local = {
  serviceId: 1,
  frontend: { address: NODE, port: 30080 },
  backends: [{ id: 11, address: POD, port: 8080, local: true }],
};
/** The REPLY key of a flow to `remote` SNATed to the node's snatPort. */
const remoteReplyKey = (snatPort: number, proto: number) => ({
  saddr: POD_B,
  daddr: NODE,
  sport: 8080,
  dport: snatPort,
  proto,
  dir: CtDir.REPLY,
});
const syn = (sport: number, dport: number): PacketSpec => ({
  ipv4: { src: CLIENT, dst: NODE },
  tcp: { sport, dport, flags: 'S' },
});
const fwdKey = (sport: number, dport: number) => ({
  saddr: CLIENT,
  daddr: NODE,
  sport,
  dport,
  proto: IPPROTO.TCP,
  dir: CtDir.FORWARD,
});

describe('lb_tc config', () => {
  let ns: LbTcNetns;
  before(() => {
    requireKernel();
    ns = createLbTcNetns();
  });
  after(() => ns?.destroy());

  function withObject(config: LbTcConfig, fn: (obj: LbTcObject) => void, pinRoot?: string): void {
    const obj = loadObject(lbTcSpec, {
      rodata: lbTcRodata(config),
      ...(pinRoot ? { pinRoot } : {}),
    });
    try {
      if (!pinRoot) clearMaps(obj);
      fn(obj);
    } finally {
      obj.close();
    }
  }
  const send = (obj: LbTcObject, spec: PacketSpec) =>
    ns.testRun(obj.program('lb_tc_ingress'), buildPacket(spec));
  const verdicts = (obj: LbTcObject) =>
    Object.fromEntries(
      Object.entries(readVerdicts(obj.maps.verdict_stats)).map(([k, v]) => [k, Number(v.packets)]),
    );

  it('SNAT ports come from the configured range; exhausted -> dropped; a dead flow frees its port', () => {
    withObject({ nodeIPv4: NODE, snatPorts: { min: 61000, max: 61001 } }, (obj) => {
      programService(obj, remote);
      const ports = [40000, 40001].map((sport) => {
        assert.equal(send(obj, syn(sport, 30082)).retval, TcAction.REDIRECT);
        return obj.maps.ct4.lookup(fwdKey(sport, 30082))?.snat_port;
      });
      assert.deepEqual(ports.sort(), [61000, 61001]);
      assert.equal(send(obj, syn(40002, 30082)).retval, TcAction.SHOT);
      assert.equal(verdicts(obj).DROP_SNAT_EXHAUSTED, 1);

      const key = fwdKey(40000, 30082);
      const e = obj.maps.ct4.lookup(key);
      assert.ok(e);
      const dead = { ...e, expires_ns: 1n };
      obj.maps.ct4.update(key, dead);
      obj.maps.ct4.update(remoteReplyKey(e.snat_port, IPPROTO.TCP), dead);
      assert.equal(send(obj, syn(40003, 30082)).retval, TcAction.REDIRECT);
      assert.equal(obj.maps.ct4.lookup(fwdKey(40003, 30082))?.snat_port, e.snat_port);
    });
  });

  it('without node_ipv4, flows that need SNAT are dropped; others still work', () => {
    withObject({ nodeIPv4: '0.0.0.0' }, (obj) => {
      programService(obj, remote);
      programService(obj, local);
      assert.equal(send(obj, syn(40000, 30082)).retval, TcAction.SHOT);
      assert.equal(send(obj, syn(40000, 30080)).retval, TcAction.REDIRECT);
      assert.deepEqual(verdicts(obj), {
        DROP_SNAT_NO_ADDRESS: 1,
        NEW_FLOW: 1,
        DELIVER_REDIRECT: 1,
      });
    });
  });

  it('REJECTs are rate-limited (icmp_errors_per_sec); beyond the limit they are drops', () => {
    withObject({ nodeIPv4: NODE, icmpErrorsPerSec: 2 }, (obj) => {
      programService(obj, { serviceId: 9, frontend: { address: NODE, port: 30092 }, backends: [] });
      const verdictsSeen = [1, 2, 3, 4].map((i) => send(obj, syn(40000 + i, 30092)).retval);
      assert.deepEqual(verdictsSeen, [
        TcAction.REDIRECT,
        TcAction.REDIRECT,
        TcAction.SHOT,
        TcAction.SHOT,
      ]);
      assert.deepEqual(verdicts(obj), { REJECT_NO_BACKEND: 2, DROP_NO_BACKEND: 2 });
    });
    withObject({ nodeIPv4: NODE, icmpErrorsPerSec: 0 }, (obj) => {
      programService(obj, { serviceId: 9, frontend: { address: NODE, port: 30092 }, backends: [] });
      assert.equal(send(obj, syn(40000, 30092)).retval, TcAction.SHOT);
    });
  });

  it('conntrack timeouts come from .rodata', () => {
    withObject({ nodeIPv4: NODE, ctTimeouts: { tcpSyn: 5, tcpEstablished: 7 } }, (obj) => {
      programService(obj, local);
      send(obj, syn(40000, 30080));
      const e = obj.maps.ct4.lookup(fwdKey(40000, 30080));
      assert.equal(e?.state, CtState.SYN_SENT);
      assert.equal(e.expires_ns - e.created_ns, 5_000_000_000n);
      const out = send(obj, {
        ipv4: { src: POD, dst: CLIENT },
        tcp: { sport: 8080, dport: 40000, flags: 'SA' },
      });
      assert.equal(parsePacket(out.data).ipv4?.src, NODE);
      const after = obj.maps.ct4.lookup(fwdKey(40000, 30080));
      assert.equal(after?.state, CtState.ESTABLISHED);
      const lifetime = after.expires_ns - process.hrtime.bigint();
      assert.ok(lifetime > 6_000_000_000n && lifetime <= 7_000_000_000n, `${lifetime}`);
    });
  });

  it('a flow under a 1 s timeout is kept alive by its packets (refreshed every half timeout)', () => {
    withObject({ nodeIPv4: NODE, ctTimeouts: { udp: 1 } }, (obj) => {
      programService(obj, { ...remote, frontend: { ...remote.frontend, proto: 'udp' } });
      const packet: PacketSpec = {
        ipv4: { src: CLIENT, dst: NODE },
        udp: { sport: 40000, dport: 30082 },
        payload: 'ping',
      };
      const key = { ...fwdKey(40000, 30082), proto: IPPROTO.UDP };
      assert.equal(send(obj, packet).retval, TcAction.REDIRECT);
      const first = obj.maps.ct4.lookup(key);
      assert.ok(first);
      // As if written half a second ago: alive for another half second. A second packet of the
      // flow must push its expiry out again (a flat one-second step never did under a 1 s
      // timeout: the flow died a second after its first packet, however busy).
      const aged = { ...first, expires_ns: process.hrtime.bigint() + 500_000_000n };
      obj.maps.ct4.update(key, aged);
      const replyKey = remoteReplyKey(first.snat_port, IPPROTO.UDP);
      obj.maps.ct4.update(replyKey, aged);
      assert.equal(send(obj, packet).retval, TcAction.REDIRECT);
      const after = obj.maps.ct4.lookup(key);
      assert.equal(after?.created_ns, first.created_ns, 'the same flow, not a new one');
      assert.equal(after.snat_port, first.snat_port);
      assert.ok(after.expires_ns > aged.expires_ns, 'refreshed');
      assert.equal(obj.maps.ct4.lookup(replyKey)?.expires_ns, after.expires_ns, 'both entries');
    });
  });

  it('pinned maps: a reloaded program continues the flows of the one before', () => {
    const root = mkdtempSync(join(BPFFS, 'sluice-test-lbtc-'));
    try {
      let snatPort = 0;
      withObject(
        { nodeIPv4: NODE },
        (obj) => {
          programService(obj, remote);
          send(obj, syn(40000, 30082));
          snatPort = obj.maps.ct4.lookup(fwdKey(40000, 30082))?.snat_port ?? 0;
        },
        root,
      );
      withObject(
        { nodeIPv4: NODE },
        (obj) => {
          const r = send(obj, {
            ipv4: { src: CLIENT, dst: NODE },
            tcp: { sport: 40000, dport: 30082, flags: 'A' },
            payload: 'after the restart',
          });
          assert.equal(r.retval, TcAction.REDIRECT);
          assert.equal(parsePacket(r.data).tcp?.sport, snatPort, 'same SNAT port');
          assert.equal(verdicts(obj).CT_FORWARD, 1);
        },
        root,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('lb_tc spec helpers', () => {
  it('lbTcRodata encodes the config and refuses bad values', () => {
    const r = lbTcRodata({ nodeIPv4: '198.18.0.10', clusterCidr: '198.18.16.0/20' });
    assert.equal(r.node_ipv4, 0xc612000a);
    assert.equal(r.cluster_cidr_ipv4, 0xc6121000);
    assert.equal(r.cluster_cidr_len, 20);
    assert.equal(r.ct_timeout_tcp_established, 21600);
    assert.throws(() => lbTcRodata({ nodeIPv4: '198.18.0' }), /invalid IPv4 address/);
    assert.throws(() => lbTcRodata({ nodeIPv4: NODE, snatPorts: { min: 2, max: 1 } }), /SNAT/);
    assert.throws(() => lbTcRodata({ nodeIPv4: NODE, clusterCidr: '10.0.0.0' }), /cluster CIDR/);
    assert.throws(() => lbTcRodata({ nodeIPv4: NODE, ctTimeouts: { udp: -1 } }), /timeout udp/);
  });

  it('verdicts have stable names; drops are 128 and above', () => {
    assert.equal(verdictName(Verdict.DROP_NO_LOCAL_BACKEND), 'DROP_NO_LOCAL_BACKEND');
    assert.equal(verdictName(200), 'verdict_200');
    for (const [name, value] of Object.entries(Verdict)) {
      assert.equal(isDropVerdict(value), name.startsWith('DROP_'), name);
    }
  });
});
