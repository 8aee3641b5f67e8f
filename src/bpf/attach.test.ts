import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { createConnection, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { withTestCgroup, cgroup2Root } from '../testing/cgroup.js';
import { attachFixturesSpec, Hook } from '../testing/fixtures.js';
import { inNetns, withVethPair } from '../testing/netns.js';
import { requireKernel } from '../testing/privileges.js';
import { attachCgroup, attachments, attachSkMsg } from './attach.js';
import type { BpfObject } from './object.js';
import { loadObject } from './object.js';

const childScript = join(dirname(fileURLToPath(import.meta.url)), '../testing/attach-child.js');

interface ChildReport {
  attached: { list: { kind: string; point: string; target: string }[]; xdpId: number; ingress: string; egress: string };
  afterPing: { xdp: number; tc: number };
  atDetach: { xdp: number; tc: number };
  detached: { list: unknown[]; xdpId: number; ingress: string; qdiscs: string };
  afterDetach: { xdp: number; tc: number };
}

describe('XDP and TC attach (in a test namespace)', () => {
  before(requireKernel);

  for (const mode of ['native', 'generic'] as const) {
    it(`attaches XDP (${mode}) and TC ingress/egress, sees traffic, and detaches cleanly`, async () => {
      await withVethPair((pair) => {
        const out = inNetns(pair.ns, process.execPath, [childScript, pair.dev, pair.peerNs, pair.addr, mode]);
        const r = JSON.parse(out) as ChildReport;
        assert.deepEqual(
          r.attached.list.map((a) => `${a.kind}:${a.point}:${a.target}`).sort(),
          [`tc:egress:${pair.dev}`, `tc:ingress:${pair.dev}`, `xdp:${mode}:${pair.dev}`],
        );
        assert.ok(r.attached.xdpId > 0, 'the kernel reports an XDP program on the device');
        assert.match(r.attached.ingress, /tc_count/);
        assert.match(r.attached.egress, /tc_count/);
        assert.ok(r.afterPing.xdp >= 3, `XDP saw the pings (${r.afterPing.xdp})`);
        assert.ok(r.afterPing.tc >= 3, `TC saw the pings (${r.afterPing.tc})`);
        assert.deepEqual(r.detached.list, []);
        assert.equal(r.detached.xdpId, 0);
        assert.doesNotMatch(r.detached.ingress, /tc_count/);
        assert.doesNotMatch(r.detached.qdiscs, /clsact/, 'the clsact qdisc we created is gone');
        assert.deepEqual(r.afterDetach, r.atDetach, 'no program runs after detach');
      });
    });
  }
});

/** Runs a Node.js snippet as a process inside the cgroup (it joins before doing anything). */
function runInCgroup(cgroup: string, code: string): void {
  execFileSync('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$0" --input-type=module -e "$1"`, process.execPath, code], {
    stdio: 'pipe',
    timeout: 10_000,
  });
}

describe('cgroup and sk_msg attach', () => {
  let obj: BpfObject<typeof attachFixturesSpec.maps>;
  before(() => {
    requireKernel();
    obj = loadObject(attachFixturesSpec);
  });
  after(() => obj?.close());
  const count = (hook: number) => Number(obj.maps.hook_calls.lookup(hook));

  it('refuses the root cgroup', () => {
    assert.throws(() => attachCgroup(obj.program('connect4_count'), cgroup2Root()), /refusing to attach connect4_count to the root cgroup/);
    assert.deepEqual(attachments(), []);
  });

  it('attaches connect4, sendmsg4, recvmsg4, getpeername4 and sock_ops to a cgroup of ours', async () => {
    const server = createServer((s) => s.on('error', () => undefined));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    // TCP connect + getpeername (remoteAddress), then a UDP datagram to itself: sendmsg + recvmsg.
    const client = `
      import net from 'node:net'; import dgram from 'node:dgram';
      const s = net.createConnection(${port}, '127.0.0.1');
      await new Promise((r) => s.on('connect', r)); void s.remoteAddress; s.destroy();
      const u = dgram.createSocket('udp4'); await new Promise((r) => u.bind(0, '127.0.0.1', r));
      const got = new Promise((r) => u.on('message', r));
      u.send('x', u.address().port, '127.0.0.1'); await got; u.close();`;
    try {
      await withTestCgroup((cgroup) => {
        const programs = ['connect4_count', 'sendmsg4_count', 'recvmsg4_count', 'getpeername4_count', 'sockops_count'];
        const handles = programs.map((p) => attachCgroup(obj.program(p), cgroup));
        try {
          assert.deepEqual(
            attachments().map((a) => a.point).sort(),
            ['connect4', 'getpeername4', 'recvmsg4', 'sendmsg4', 'sock_ops'],
          );
          runInCgroup(cgroup, client);
          for (const hook of [Hook.CONNECT4, Hook.SENDMSG4, Hook.RECVMSG4, Hook.GETPEERNAME4, Hook.SOCKOPS]) {
            assert.ok(count(hook) > 0, `hook ${hook} ran`);
          }
        } finally {
          for (const h of handles) h.detach();
        }
        const before = [Hook.CONNECT4, Hook.SENDMSG4, Hook.SOCKOPS].map(count);
        runInCgroup(cgroup, client);
        assert.deepEqual([Hook.CONNECT4, Hook.SENDMSG4, Hook.SOCKOPS].map(count), before, 'detached programs no longer run');
        assert.deepEqual(attachments(), []);
      });
    } finally {
      server.close();
    }
  });

  it('attaches sk_msg to a sockhash: it sees messages of the sockets in it', async () => {
    const received: Buffer[] = [];
    const server = createServer((s) => s.on('data', (d: Buffer) => received.push(d)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client: Socket = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const handle = attachSkMsg(obj.program('sk_msg_count'), obj.maps.sock_hash);
    try {
      const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
      obj.maps.sock_hash.update(1, BigInt(fd));
      const before = count(Hook.SK_MSG);
      client.write('hello');
      for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(Buffer.concat(received).toString(), 'hello', 'SK_PASS delivers the data');
      assert.ok(count(Hook.SK_MSG) > before, 'the sk_msg program ran');
      assert.deepEqual(attachments().map((a) => `${a.kind}:${a.target}`), ['sk_msg:sock_hash']);
    } finally {
      handle.detach();
      client.destroy();
      server.close();
    }
    assert.deepEqual(attachments(), []);
  });
});

