/**
 * The socket LB on the real kernel, end to end: sockLbSpec loaded with pins in a throwaway bpffs
 * directory, its programs attached to a throwaway cgroup (the node's, in the lab), backends
 * (echo_server) in the peer namespace of a veth pair, and clients that join a child cgroup (a
 * pod's) and the first namespace before they run. The first namespace has no default route, so a connect the programs failed to
 * translate ends in ENETUNREACH there: nothing can leave the machine.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { attachments } from '../bpf/attach.js';
import { BPFFS } from '../bpf/environment.js';
import { loadObject } from '../bpf/object.js';
import { withTestCgroup } from '../testing/cgroup.js';
import type { VethPair } from '../testing/netns.js';
import { withVethPair } from '../testing/netns.js';
import { requireKernel } from '../testing/privileges.js';
import { IPPROTO, LbServiceFlag, LbScope } from './lb.js';
import type { SockLbObject } from './sock-lb.js';
import { attachSocketLb, sockLbSpec } from './sock-lb.js';

const execFileAsync = promisify(execFile);

const ECHO_SERVER = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../native/.output/echo_server',
);

// The backends listen on the peer end of the veth pair (withVethPair's fixed addresses).
const BACKEND_IP = '198.18.0.2';
const CLIENT_IP = '198.18.0.1';
const PORT_A = 8080;
const PORT_B = 8081;
const NAME = { [PORT_A]: 'b8080', [PORT_B]: 'b8081' } as const;

// Frontends: from the benchmarking range, outside the veth's /30, so never routable here.
const CLUSTER_IP = '198.19.0.10'; // TCP 80 and UDP 53 -> both backends
const EMPTY_IP = '198.19.0.11'; // TCP 80 and UDP 53, no endpoint
const AFFINITY_IP = '198.19.0.12'; // TCP 80, sessionAffinity ClientIP
const NO_REVNAT_IP = '198.19.0.13'; // UDP 53, its lb4_reverse_nat entry is missing
const NOT_A_SERVICE = '198.19.0.99';

const BACKEND = { tcpA: 1, tcpB: 2, udpA: 3, udpB: 4 } as const;

interface ServiceSpec {
  id: number;
  address: string;
  port: number;
  proto: number;
  backends: number[];
  affinityTimeout?: number;
  /** Write the frontend's lb4_reverse_nat entry (default true). */
  revNat?: boolean;
}

const SERVICES: ServiceSpec[] = [
  { id: 1, address: CLUSTER_IP, port: 80, proto: IPPROTO.TCP, backends: [1, 2] },
  { id: 2, address: CLUSTER_IP, port: 53, proto: IPPROTO.UDP, backends: [3, 4] },
  {
    id: 3,
    address: AFFINITY_IP,
    port: 80,
    proto: IPPROTO.TCP,
    backends: [1, 2],
    affinityTimeout: 600,
  },
  { id: 4, address: EMPTY_IP, port: 80, proto: IPPROTO.TCP, backends: [] },
  { id: 5, address: EMPTY_IP, port: 53, proto: IPPROTO.UDP, backends: [] },
  { id: 6, address: NO_REVNAT_IP, port: 53, proto: IPPROTO.UDP, backends: [3, 4], revNat: false },
];

/** Writes the lb maps the way the agent must: backends, slots, reverse NAT, then the service. */
function programMaps(obj: SockLbObject): void {
  const { lb4_backends, lb_slots, lb4_reverse_nat, lb4_services } = obj.maps;
  for (const [id, port, proto] of [
    [BACKEND.tcpA, PORT_A, IPPROTO.TCP],
    [BACKEND.tcpB, PORT_B, IPPROTO.TCP],
    [BACKEND.udpA, PORT_A, IPPROTO.UDP],
    [BACKEND.udpB, PORT_B, IPPROTO.UDP],
  ] as const) {
    lb4_backends.update(id, {
      address: BACKEND_IP,
      port,
      proto,
      flags: 0,
      node_address: '0.0.0.0',
    });
  }
  for (const svc of SERVICES) {
    svc.backends.forEach((backendId, i) => {
      lb_slots.update({ service_id: svc.id, slot: i + 1 }, backendId);
    });
    if (svc.revNat !== false) {
      lb4_reverse_nat.update(svc.id, { address: svc.address, port: svc.port });
    }
    lb4_services.update(
      { address: svc.address, dport: svc.port, proto: svc.proto, scope: LbScope.INTERNAL },
      {
        service_id: svc.id,
        rev_nat_id: svc.id,
        backend_count: svc.backends.length,
        flags: LbServiceFlag.CLUSTER_IP | (svc.affinityTimeout ? LbServiceFlag.AFFINITY : 0),
        affinity_timeout: svc.affinityTimeout ?? 0,
      },
    );
  }
}

// ---- clients -------------------------------------------------------------------------------

type ClientOp =
  | { kind: 'tcp'; host: string; port: number; bind?: string; message?: string }
  | { kind: 'udp-connect'; host: string; port: number; thenHost?: string }
  | { kind: 'udp-sendto'; host: string; port: number; count?: number };

/** One exchange: the answer (`name`), getpeername() (`peer`), the datagram's source (`from`). */
interface Reply {
  name?: string;
  peer?: string;
  from?: string;
  error?: string;
}

/**
 * Runs the ops in order in one process; prints, per op, the replies (tcp: one; udp-connect: one,
 * two with thenHost; udp-sendto: one per datagram, all from the same unconnected socket).
 * Errors are recorded by their code (ECONNREFUSED, ENETUNREACH, ...), never thrown.
 */
const CLIENT = `
import net from 'node:net';
import dgram from 'node:dgram';
const TIMEOUT_MS = 5000;
const hostPort = (a, p) => a + ':' + p;

function tcp({ host, port, bind, message = 'whoami' }) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: bind });
    const done = (r) => { clearTimeout(timer); s.destroy(); resolve([r]); };
    const timer = setTimeout(() => done({ error: 'TIMEOUT' }), TIMEOUT_MS);
    s.on('error', (e) => done({ error: e.code }));
    s.on('connect', () => {
      const peer = hostPort(s.remoteAddress, s.remotePort);
      let got = '';
      s.on('data', (d) => { got += d; if (got.endsWith('\\n')) done({ name: got.trim(), peer }); });
      s.write(message + '\\n');
    });
  });
}

// connect() u to host:port, then one whoami exchange.
function connectAndAsk(u, host, port) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'TIMEOUT' }), TIMEOUT_MS);
    u.connect(port, host, (e) => {
      if (e) { clearTimeout(timer); return resolve({ error: e.code }); }
      const remote = u.remoteAddress();
      const peer = hostPort(remote.address, remote.port);
      u.once('message', (m, r) => {
        clearTimeout(timer);
        resolve({ name: m.toString(), peer, from: hostPort(r.address, r.port) });
      });
      u.send('whoami');
    });
  });
}

// With thenHost: disconnect, and connect the same socket again to thenHost at the port of the
// backend that answered (its name is b<port>).
async function udpConnect({ host, port, thenHost }) {
  const u = dgram.createSocket('udp4');
  u.on('error', () => {});
  const replies = [await connectAndAsk(u, host, port)];
  if (thenHost && replies[0].name) {
    u.disconnect();
    replies.push(await connectAndAsk(u, thenHost, Number(replies[0].name.slice(1))));
  }
  u.close();
  return replies;
}

async function udpSendto({ host, port, count = 1 }) {
  const u = dgram.createSocket('udp4');
  u.on('error', () => {});
  const replies = [];
  for (let i = 0; i < count; i++) {
    const reply = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'TIMEOUT' }), TIMEOUT_MS);
      u.once('message', (m, r) => { clearTimeout(timer); resolve({ name: m.toString(), from: hostPort(r.address, r.port) }); });
      u.send('whoami', port, host, (e) => { if (e) { clearTimeout(timer); resolve({ error: e.code }); } });
    });
    replies.push(reply);
    if (reply.error) break;
  }
  u.close();
  return replies;
}

const run = { tcp, 'udp-connect': udpConnect, 'udp-sendto': udpSendto };
const results = [];
for (const op of JSON.parse(process.argv[1])) results.push(await run[op.kind](op));
process.stdout.write(JSON.stringify(results));
`;

/** Runs the client in the cgroup (joined first: `ip netns exec` hides /sys/fs/cgroup) and netns. */
async function runClient(cgroup: string, ns: string, ops: ClientOp[]): Promise<Reply[][]> {
  const { stdout } = await execFileAsync(
    'sh',
    [
      '-c',
      'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "$2" --input-type=module -e "$3" "$4"',
      cgroup,
      ns,
      process.execPath,
      CLIENT,
      JSON.stringify(ops),
    ],
    { timeout: 120_000 },
  );
  return JSON.parse(stdout) as Reply[][];
}

const times = <T>(n: number, op: T): T[] => Array.from({ length: n }, () => op);
const names = (replies: Reply[]): Set<string | undefined> => new Set(replies.map((r) => r.name));

// ---- backends ------------------------------------------------------------------------------

/** echo_server answering `whoami` with its name on TCP and UDP `port`, in namespace ns. */
async function startBackend(ns: string, port: 8080 | 8081): Promise<ChildProcess> {
  assert.ok(existsSync(ECHO_SERVER), `${ECHO_SERVER} is missing: build it with 'make -C native'`);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      ECHO_SERVER,
      '--name',
      NAME[port],
      '--tcp',
      `${port}`,
      '--udp',
      `${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    await new Promise<void>((resolveReady, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`echo_server ${port}: not listening`)), 5000);
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('listening on')) {
          clearTimeout(timer);
          resolveReady();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`echo_server ${port} exited with ${code}: ${stderr}`));
      });
    });
  } catch (error) {
    await stopBackend(child);
    throw error;
  }
  return child;
}

/** Ends a backend we started, by its PID (`ip netns exec` execs into echo_server). */
async function stopBackend(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

async function withBackends<T>(pair: VethPair, fn: () => Promise<T>): Promise<T> {
  const started: ChildProcess[] = [];
  try {
    started.push(await startBackend(pair.peerNs, PORT_A));
    started.push(await startBackend(pair.peerNs, PORT_B));
    return await fn();
  } finally {
    for (const child of started) await stopBackend(child);
  }
}

/** A throwaway pin root in bpffs, removed with everything pinned in it. */
async function withPinRoot<T>(fn: (pinRoot: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(BPFFS, `sluice-test-${process.pid}-`));
  try {
    return await fn(join(dir, 'node'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the tests -----------------------------------------------------------------------------

describe('socket LB (cgroup connect4/sendmsg4/recvmsg4/getpeername4, real kernel)', () => {
  before(requireKernel);

  it('translates ClusterIP traffic below the attached cgroup, reverses it, stops when detached', async (t) => {
    await withPinRoot(async (pinRoot) => {
      const obj = loadObject(sockLbSpec, { pinRoot });
      try {
        assert.deepEqual(readdirSync(pinRoot).sort(), Object.keys(sockLbSpec.maps).sort());
        programMaps(obj);
        await withVethPair((pair) =>
          withBackends(pair, () =>
            withTestCgroup(async (cgroup) => {
              // As in the lab: programs on the node's cgroup, clients in a pod cgroup below it.
              const pod = join(cgroup, 'pod');
              mkdirSync(pod);
              try {
                await attachedThenDetached(t, obj, pinRoot, cgroup, (ops: ClientOp[]) =>
                  runClient(pod, pair.ns, ops),
                );
              } finally {
                rmdirSync(pod);
              }
            }),
          ),
        );
      } finally {
        obj.close();
      }
    });
  });
});

async function attachedThenDetached(
  t: TestContext,
  obj: SockLbObject,
  pinRoot: string,
  cgroup: string,
  client: (ops: ClientOp[]) => Promise<Reply[][]>,
): Promise<void> {
  const links = attachSocketLb(obj, cgroup);
  try {
    assert.deepEqual(
      links.map((l) => `${l.program}:${l.point}`),
      [
        'sock4_connect:connect4',
        'sock4_sendmsg:sendmsg4',
        'sock4_recvmsg:recvmsg4',
        'sock4_getpeername:getpeername4',
      ],
    );
    await attachedCases(t, obj, pinRoot, client);
  } finally {
    for (const link of links) link.detach();
  }
  await t.test('after detaching, nothing is translated', async () => {
    assert.deepEqual(attachments(), []);
    const [tcp, empty, udp] = await client([
      { kind: 'tcp', host: CLUSTER_IP, port: 80 },
      { kind: 'tcp', host: EMPTY_IP, port: 80 },
      { kind: 'udp-sendto', host: CLUSTER_IP, port: 53 },
    ]);
    assert.deepEqual(tcp, [{ error: 'ENETUNREACH' }]);
    assert.deepEqual(empty, [{ error: 'ENETUNREACH' }]);
    assert.deepEqual(udp, [{ error: 'ENETUNREACH' }]);
  });
}

async function attachedCases(
  t: TestContext,
  obj: SockLbObject,
  pinRoot: string,
  client: (ops: ClientOp[]) => Promise<Reply[][]>,
): Promise<void> {
  const SERVICE_TCP = `${CLUSTER_IP}:80`;
  const SERVICE_UDP = `${CLUSTER_IP}:53`;
  const SERVICE_KEY_TCP = {
    address: CLUSTER_IP,
    dport: 80,
    proto: IPPROTO.TCP,
    scope: LbScope.INTERNAL,
  };

  await t.test(
    'TCP connect to the ClusterIP reaches a backend; getpeername says the service',
    async () => {
      const [[whoami] = [], [clientip] = []] = await client([
        { kind: 'tcp', host: CLUSTER_IP, port: 80 },
        { kind: 'tcp', host: CLUSTER_IP, port: 80, message: 'clientip' },
      ]);
      assert.ok(
        whoami?.name === NAME[PORT_A] || whoami?.name === NAME[PORT_B],
        JSON.stringify(whoami),
      );
      assert.equal(whoami?.peer, SERVICE_TCP);
      // No SNAT: the backend sees the client's own address.
      assert.match(clientip?.name ?? '', new RegExp(`^${CLIENT_IP.replaceAll('.', '\\.')}:\\d+$`));
      assert.equal(clientip?.peer, SERVICE_TCP);
    },
  );

  await t.test('TCP connects spread over both backends (40 connects: miss 2^-39)', async () => {
    const replies = (await client(times(40, { kind: 'tcp', host: CLUSTER_IP, port: 80 }))).flat();
    assert.deepEqual(names(replies), new Set([NAME[PORT_A], NAME[PORT_B]]));
    assert.ok(replies.every((r) => r.peer === SERVICE_TCP));
  });

  await t.test('ClientIP affinity sticks per pod (netns cookie) and bound address', async () => {
    const { lb4_affinity } = obj.maps;
    const ours = () => [...lb4_affinity.entries()].filter(([k]) => k.service_id === 3);
    for (const [k] of ours()) lb4_affinity.delete(k);
    // Unseeded: the first connect picks at random and the next 31 follow it (were the picks
    // independent, all 32 would agree with probability 2^-31).
    const picked = (await client(times(32, { kind: 'tcp', host: AFFINITY_IP, port: 80 }))).flat();
    assert.equal(names(picked).size, 1, JSON.stringify([...names(picked)]));
    const recorded = ours();
    assert.equal(recorded.length, 1, 'one entry: this pod, unbound');
    const [[key, entry] = []] = recorded;
    assert.ok(key && entry && key.netns_cookie > 0n, 'keyed on the pod network namespace');
    assert.equal(key.client_address, '0.0.0.0');
    assert.equal(picked[0]?.name, entry.backend_id === BACKEND.tcpA ? NAME[PORT_A] : NAME[PORT_B]);

    // The key is what decides: point this pod at A, and its bound sockets (a second key) at B.
    const fresh = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, like bpf_ktime_get_ns
    lb4_affinity.update(key, { last_used_ns: fresh(), backend_id: BACKEND.tcpA });
    lb4_affinity.update(
      { ...key, client_address: CLIENT_IP },
      { last_used_ns: fresh(), backend_id: BACKEND.tcpB },
    );
    const results = await client([
      ...times(20, { kind: 'tcp', host: AFFINITY_IP, port: 80 } as const),
      ...times(20, { kind: 'tcp', host: AFFINITY_IP, port: 80, bind: CLIENT_IP } as const),
    ]);
    const replies = results.flat();
    assert.deepEqual(names(replies.slice(0, 20)), new Set([NAME[PORT_A]]));
    assert.deepEqual(names(replies.slice(20)), new Set([NAME[PORT_B]]));
    assert.ok(replies.every((r) => r.peer === `${AFFINITY_IP}:80`));
  });

  await t.test('connected UDP: translated once, peer and replies show the service', async () => {
    const replies = (
      await client(times(40, { kind: 'udp-connect', host: CLUSTER_IP, port: 53 }))
    ).flat();
    assert.deepEqual(names(replies), new Set([NAME[PORT_A], NAME[PORT_B]]));
    for (const r of replies) {
      assert.equal(r.peer, SERVICE_UDP);
      assert.equal(r.from, SERVICE_UDP);
    }
  });

  await t.test(
    'a UDP socket connected again, to a non-service address, forgets the service',
    async () => {
      const [[first, second] = []] = await client([
        { kind: 'udp-connect', host: CLUSTER_IP, port: 53, thenHost: BACKEND_IP },
      ]);
      assert.equal(first?.peer, SERVICE_UDP);
      const backend = `${BACKEND_IP}:${first?.name?.slice(1)}`;
      assert.deepEqual(second, { name: first?.name, peer: backend, from: backend });
    },
  );

  await t.test(
    'unconnected UDP: replies come from the service; one socket sticks to one backend',
    async () => {
      const [oneSocket = [], ...perSocket] = await client([
        { kind: 'udp-sendto', host: CLUSTER_IP, port: 53, count: 32 },
        ...times(40, { kind: 'udp-sendto', host: CLUSTER_IP, port: 53 } as const),
      ]);
      assert.equal(oneSocket.length, 32);
      assert.equal(names(oneSocket).size, 1, 'datagrams of one socket go to one backend');
      assert.deepEqual(names(perSocket.flat()), new Set([NAME[PORT_A], NAME[PORT_B]]));
      for (const r of [...oneSocket, ...perSocket.flat()]) assert.equal(r.from, SERVICE_UDP);
      // The reverse entries recvmsg4 used: (socket cookie, backend) -> frontend.
      const reverse = [...obj.maps.sock_lb4_rev.entries()];
      for (const port of [PORT_A, PORT_B]) {
        assert.ok(
          reverse.some(
            ([k, v]) =>
              k.backend_address === BACKEND_IP &&
              k.backend_port === port &&
              v.address === CLUSTER_IP &&
              v.port === 53 &&
              v.rev_nat_id === 2,
          ),
          `a reverse entry for backend port ${port}`,
        );
      }
    },
  );

  await t.test('no endpoint: connect() and sendto() fail at once with ECONNREFUSED', async () => {
    const results = await client([
      { kind: 'tcp', host: EMPTY_IP, port: 80 },
      { kind: 'udp-connect', host: EMPTY_IP, port: 53 },
      { kind: 'udp-sendto', host: EMPTY_IP, port: 53 },
    ]);
    assert.deepEqual(results, times(3, [{ error: 'ECONNREFUSED' }]));
  });

  await t.test('addresses that are not a service frontend are left alone', async () => {
    const [direct, otherPort, otherAddress, udpDirect] = await client([
      { kind: 'tcp', host: BACKEND_IP, port: PORT_B },
      { kind: 'tcp', host: CLUSTER_IP, port: 81 },
      { kind: 'tcp', host: NOT_A_SERVICE, port: 80 },
      { kind: 'udp-sendto', host: BACKEND_IP, port: PORT_A },
    ]);
    assert.deepEqual(direct, [{ name: NAME[PORT_B], peer: `${BACKEND_IP}:${PORT_B}` }]);
    // Untranslated, these follow the namespace's routes: there is none for 198.19.0.0/16.
    assert.deepEqual(otherPort, [{ error: 'ENETUNREACH' }]);
    assert.deepEqual(otherAddress, [{ error: 'ENETUNREACH' }]);
    assert.deepEqual(udpDirect, [{ name: NAME[PORT_A], from: `${BACKEND_IP}:${PORT_A}` }]);
  });

  await t.test('a frontend without its reverse-NAT entry is not reported back', async () => {
    const [replies = []] = await client([
      { kind: 'udp-sendto', host: NO_REVNAT_IP, port: 53, count: 3 },
    ]);
    assert.equal(replies.length, 3);
    for (const r of replies) assert.match(r.from ?? '', /^198\.18\.0\.2:808[01]$/);
  });

  await t.test('a second load adopts every pinned map (agent restart)', async () => {
    const again = loadObject(sockLbSpec, { pinRoot });
    // A socket of this process (listening on loopback, no traffic) keys the socket storage.
    const server = createServer();
    try {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      const conn = {
        frontend_address: CLUSTER_IP,
        backend_address: BACKEND_IP,
        frontend_port: 80,
        backend_port: PORT_A,
        rev_nat_id: 1,
      };
      again.maps.sock_lb4_conns.update(fd, conn);
      assert.deepEqual(obj.maps.sock_lb4_conns.lookup(fd), conn);
      const revKey = { cookie: 1n, backend_address: BACKEND_IP, backend_port: PORT_A };
      again.maps.sock_lb4_rev.update(revKey, { address: CLUSTER_IP, port: 53, rev_nat_id: 2 });
      assert.deepEqual(obj.maps.sock_lb4_rev.lookup(revKey), {
        address: CLUSTER_IP,
        port: 53,
        rev_nat_id: 2,
      });
      assert.ok(obj.maps.sock_lb4_rev.delete(revKey));
      assert.equal(again.maps.lb4_services.lookup(SERVICE_KEY_TCP)?.service_id, 1);
    } finally {
      server.close();
      again.close();
    }
  });
}
