/**
 * Socket acceleration end to end, in a real lab with sluice agents (socketAcceleration on):
 * pods in a namespace annotated sluice.io/accelerate exchange bytes through the sockmap
 * redirect, pod to pod and pod to ClusterIP; a TrafficOptimization tunes the server's
 * connections. Every transfer is checked byte for byte by native/sock_xfer (a generated stream
 * compared at every offset); the node's sockmap_stats counters say whether the bytes were
 * redirected; `sluice sock list` and the kernel's own view (ss -ti in the pod) must agree.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { SockRedirectReadout, SockmapStat } from '../datapath/sock-redirect.js';
import { SOCKMAP_STATS, readSockmapStats } from '../datapath/sock-redirect.js';
import { objectKey } from '../model/index.js';
import { requireKernel } from '../testing/privileges.js';
import {
  agentHealth,
  agentPinRoot,
  liveAgent,
  writtenClusterDigest,
  startAgent,
  waitProgrammed,
} from './agents.js';
import { Lab } from './lab.js';
import { logDir } from './topology/state-file.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SOCK_XFER = join(ROOT, 'native/.output/sock_xfer');
const MAIN = join(ROOT, 'dist/cli/main.js');
const PORT = 7100;
const GiB = 1 << 30;

interface XferResult {
  ok: number;
  failed: number;
  connections: number;
  results: string[];
}

/** The namespace default congestion control, and another one the kernel offers. */
function algorithms(): { fallback: string; tuned: string } {
  const fallback = readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
  const offered = readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8')
    .trim()
    .split(/\s+/);
  const tuned = ['bbr', 'cubic', 'reno'].find((a) => a !== fallback && offered.includes(a));
  assert.ok(tuned, `the kernel offers a second congestion control (${offered.join(' ')})`);
  return { fallback, tuned };
}

function manifest(tuned: string): string {
  const server = (name: string, ns: string, node: string, app: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${app} } }
spec:
  nodeName: ${node}
  containers:
    - name: xfer
      image: sluice/sock-xfer
      command: [${SOCK_XFER}, serve, "${PORT}"]
      ports: [{ containerPort: ${PORT} }]
---`;
  const client = (name: string, ns: string, node: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns} }
spec:
  nodeName: ${node}
  containers: [{ name: client, image: sluice/echo }]
---`;
  return `
apiVersion: v1
kind: Namespace
metadata: { name: fast, annotations: { sluice.io/accelerate: "true" } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
${server('server', 'fast', 'node-0', 'xfer')}
${client('client', 'fast', 'node-0')}
${server('remote', 'fast', 'node-1', 'remote')}
${server('server', 'plain', 'node-0', 'xfer')}
${client('client', 'plain', 'node-0')}
apiVersion: v1
kind: Service
metadata: { name: xfer, namespace: fast }
spec:
  selector: { app: xfer }
  ports: [{ port: 80, targetPort: ${PORT} }]
---
apiVersion: sluice.io/v1alpha1
kind: TrafficOptimization
metadata: { name: xfer, namespace: fast }
spec:
  podSelector: { matchLabels: { app: xfer } }
  ports: [{ port: ${PORT} }]
  tcp: { congestionControl: ${tuned}, initialCongestionWindow: 20, noSlowStartAfterIdle: true }
`;
}

describe('socket acceleration (lab)', () => {
  const labName = `k${process.pid % 100000}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  const { fallback, tuned } = algorithms();
  let lab: Lab;
  let pinRoot: string;
  let clusterIP: string;

  const ipOf = (key: string): string => {
    const pod = lab.state.pods.get(key);
    assert.ok(pod, key);
    return pod.ip;
  };

  /** Runs sock_xfer's client in a pod. */
  const xfer = async (from: string, host: string, port: number, args: (string | number)[]) => {
    const r = await lab.topology.exec(
      { pod: from },
      [SOCK_XFER, 'client', host, String(port), ...args.map(String)],
      { timeoutMs: 600_000 },
    );
    return JSON.parse(r.stdout) as XferResult;
  };

  const stats = (): Record<SockmapStat, bigint> => readSockmapStats(pinRoot);
  const since = (before: Record<SockmapStat, bigint>): Record<SockmapStat, bigint> => {
    const now = stats();
    return Object.fromEntries(SOCKMAP_STATS.map((s) => [s, now[s] - before[s]])) as Record<
      SockmapStat,
      bigint
    >;
  };

  const exact = (t: TestContext, what: string, r: XferResult, connections = 1): void => {
    t.diagnostic(`${what}: ${r.ok}/${r.connections} exact`);
    assert.deepEqual(r.results, [], what);
    assert.equal(r.ok, connections, what);
  };

  /** Server lines (sock_xfer serve prints one per connection) in a pod's log. */
  const serverLog = (ns: string, pod: string): string[] =>
    readFileSync(join(logDir(stateDir), `${ns}_${pod}_xfer.log`), 'utf8')
      .trim()
      .split('\n');

  before(async () => {
    requireKernel();
    const file = join(stateDir, 'sock-accel.yaml');
    writeFileSync(file, manifest(tuned));
    lab = await Lab.up({
      files: [file],
      nodes: 2,
      proxy: 'sluice',
      stateDir,
      labName,
      agentConfig: { socketAcceleration: { enabled: true } },
    });
    pinRoot = agentPinRoot(lab.topology, 'node-0');
    clusterIP = lab.state.services.get(objectKey('fast', 'xfer'))?.clusterIP ?? '';
    assert.ok(clusterIP);
  });

  after(async () => {
    await Lab.down(stateDir, labName);
    rmSync(stateDir, { recursive: true, force: true });
    const netns = execFileSync('ip', ['netns', 'list']).toString();
    assert.equal(netns.includes(`sl-${labName}-`), false, 'no namespace of the lab is left');
    assert.equal(existsSync(`/sys/fs/bpf/sluice/lab-${labName}`), false, 'no pin is left');
  });

  it('sock list and the kernel agree: accelerated, tuned by the TrafficOptimization', async () => {
    // Held long enough for three `sluice` CLI runs and two `ss` on a loaded machine (a CLI run
    // took 3.4 s at load average 10 on this 2-CPU VM; 3 s of hold failed there).
    const held = xfer('fast/client', ipOf('fast/server'), PORT, [
      '--up',
      1000,
      '--down',
      1000,
      '--hold-ms',
      20_000,
    ]);
    let listed: (SockRedirectReadout & { node: string })[] = [];
    let server: SockRedirectReadout['connections'][number] | undefined;
    for (let i = 0; i < 100 && !server; i++) {
      await sleep(30);
      const out = execFileSync(process.execPath, [
        MAIN,
        'sock',
        'list',
        '--node',
        'node-0',
        '--pin-root',
        pinRoot,
        '-o',
        'json',
      ]).toString();
      listed = JSON.parse(out) as typeof listed;
      server = listed[0]?.connections.find((c) => c.local === `${ipOf('fast/server')}:${PORT}`);
    }
    const table = execFileSync(process.execPath, [
      MAIN,
      'sock',
      'list',
      '--pin-root',
      pinRoot,
    ]).toString();
    const client = listed[0]?.connections.find(
      (c) => c.remote === `${ipOf('fast/server')}:${PORT}`,
    );
    const ssServer = (
      await lab.topology.exec({ pod: 'fast/server' }, ['ss', '-tinH', 'sport', `= :${PORT}`])
    ).stdout;
    const ssClient = (
      await lab.topology.exec({ pod: 'fast/client' }, ['ss', '-tinH', 'dport', `= :${PORT}`])
    ).stdout;
    const sysctl = async (pod: string) =>
      (
        await lab.topology.exec({ pod }, ['cat', '/proc/sys/net/ipv4/tcp_slow_start_after_idle'])
      ).stdout.trim();
    const idleServer = await sysctl('fast/server');
    const idleClient = await sysctl('fast/client');
    assert.equal((await held).ok, 1);

    assert.ok(server, `sock list shows the server side: ${JSON.stringify(listed)}`);
    assert.ok(client, 'sock list shows the client side');
    assert.equal(server.accelerated, true);
    assert.equal(client.accelerated, true);
    assert.equal(server.congestion, tuned);
    assert.deepEqual(server.tuning, ['congestion', 'initial-cwnd', 'no-slow-start-after-idle']);
    assert.equal(server.tuneFailed, false);
    assert.equal(client.congestion, fallback);
    const ccOf = (text: string) => /^\s+(\S+) /m.exec(text)?.[1];
    assert.equal(ccOf(ssServer), tuned, `ss -ti in the server pod:\n${ssServer}`);
    assert.equal(ccOf(ssClient), fallback, `ss -ti in the client pod:\n${ssClient}`);
    assert.match(
      table,
      new RegExp(
        `${ipOf('fast/server')}:${PORT} +\\S+ +server +yes +${tuned} +congestion,initial-cwnd`,
      ),
      table,
    );
    assert.equal(idleServer, '0', 'no slow start after idle in the tuned pod');
    assert.equal(idleClient, '1', 'the client pod keeps the default');
  });

  it('byte-exact both ways, pod to pod and pod to ClusterIP, 1 byte to 50 MB, redirected', async (t) => {
    const before = stats();
    let bytes = 0n;
    let seed = 1000;
    for (const [host, port] of [
      [ipOf('fast/server'), PORT],
      [clusterIP, 80],
    ] as const) {
      for (const size of [1, 2, 1000, 65_535, 65_537, 1_000_003, 50_000_000]) {
        for (const maxChunk of [1, 1500, 262_144]) {
          if (maxChunk === 1 && size > 70_000) continue; // one byte per call: small sizes only
          const r = await xfer('fast/client', host, port, [
            '--up',
            size,
            '--down',
            size,
            '--max-chunk',
            maxChunk,
            '--seed',
            seed++,
          ]);
          exact(t, `${host}:${port} ${size} B both ways, chunks up to ${maxChunk}`, r);
          bytes += 2n * BigInt(size);
        }
      }
    }
    const d = since(before);
    t.diagnostic(
      `redirected ${d['redirected-bytes']} of ${bytes} payload bytes; passed ${d['passed-bytes']}`,
    );
    assert.ok(d['redirected-bytes'] >= bytes, 'every payload byte skipped the stack');
  });

  it('1 GiB each way through the ClusterIP, byte-exact, redirected', async (t) => {
    const before = stats();
    exact(
      t,
      '1 GiB up and 1 GiB down',
      await xfer('fast/client', clusterIP, 80, [
        '--up',
        GiB,
        '--down',
        GiB,
        '--max-chunk',
        1 << 20,
        '--seed',
        7,
      ]),
    );
    // Every payload byte redirected, unless backpressure switched a sending socket to the
    // stack (its peer fell far behind: possible on a loaded machine); then the rest passed.
    const d = since(before);
    const fellBack = d['fell-back'] + d['fell-back-tcp-mem'];
    t.diagnostic(
      `redirected ${d['redirected-bytes']}, passed ${d['passed-bytes']}, fell back ${d['fell-back']} (backlog_max) + ${d['fell-back-tcp-mem']} (tcp_mem)`,
    );
    assert.ok(fellBack <= 2n, 'at most one switch per direction');
    assert.ok(d['redirected-bytes'] + (fellBack > 0n ? d['passed-bytes'] : 0n) >= 2n * BigInt(GiB));
  });

  it('many concurrent connections, half-closes included', async (t) => {
    const before = stats();
    exact(
      t,
      '400 connections, 40 at a time',
      await xfer('fast/client', clusterIP, 80, [
        '--up',
        200_000,
        '--down',
        300_000,
        '--conns',
        400,
        '--parallel',
        40,
        '--max-chunk',
        20_000,
        '--seed',
        20_000,
      ]),
      400,
    );
    // The client half-closes after 1 byte and then reads 20 MB the server keeps sending.
    exact(
      t,
      'half-close, then 20 MB the other way',
      await xfer('fast/client', clusterIP, 80, [
        '--up',
        1,
        '--down',
        20_000_000,
        '--conns',
        10,
        '--parallel',
        10,
        '--seed',
        30_000,
      ]),
      10,
    );
    // The last closes may still be on their way through TIME_WAIT and LAST_ACK.
    for (let i = 0; i < 250 && since(before).closed < 2n * 410n; i++) await sleep(20);
    const d = since(before);
    assert.equal(d.added, 2n * 410n, 'both ends of every connection accelerated');
    assert.equal(d.closed, 2n * 410n, 'and every record dropped on close');
  });

  it('RST and a peer closing with data in flight end cleanly, exact up to the end', async (t) => {
    const before = serverLog('fast', 'server').length;
    const rst = await xfer('fast/client', clusterIP, 80, [
      '--up',
      50_000_000,
      '--down',
      1_000_000,
      '--rst-after',
      3_000_000,
      '--conns',
      10,
      '--parallel',
      5,
    ]);
    exact(t, 'client resets after 3 MB', rst, 10);
    const closed = await xfer('fast/client', clusterIP, 80, [
      '--up',
      50_000_000,
      '--down',
      50_000_000,
      '--server-close-after',
      2_000_000,
      '--conns',
      10,
      '--parallel',
      5,
    ]);
    exact(t, 'server closes after 2 MB with data unread', closed, 10);
    // The server logs each connection's outcome when it has finished with it, which may be
    // after the client has. Every one comes: a connection that hears nothing for 30 s is given
    // up by sock_xfer ('bad ... err=110'), so the loop only has to outlast that, and a lost
    // outcome fails the assertions below. A client's reset may be dropped by the server's
    // kernel (redirected bytes over the socket's backlog limit while the server reads them:
    // the flake of issue 11); the keepalive probe sock_ops arms (bpf/sockops.c,
    // peer_probe_idle_s) makes the server notice it anyway, a few seconds late.
    let lines: string[] = [];
    let waited = 0;
    for (; waited < 40_000; waited += 100) {
      lines = serverLog('fast', 'server').slice(before);
      if (lines.filter((l) => /^(closed|reset|ok|bad)/.test(l)).length >= 20) break;
      await sleep(100);
    }
    t.diagnostic(`the server's 20 outcomes took ${waited} ms after the clients ended`);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('bad')),
      [],
      'the server saw exact prefixes and every end',
    );
    assert.equal(
      lines.filter((l) => l === 'closed at 2000000').length,
      10,
      `every server that closed read exactly 2 MB:\n${lines.join('\n')}`,
    );
    assert.equal(
      lines.filter((l) => /^reset at \d+$/.test(l)).length,
      10,
      `every client reset was noticed:\n${lines.join('\n')}`,
    );
  });

  it('leaves alone a remote peer and a namespace that did not opt in', async (t) => {
    let before = stats();
    exact(
      t,
      'to the pod on node-1',
      await xfer('fast/client', ipOf('fast/remote'), PORT, [
        '--up',
        5_000_000,
        '--down',
        5_000_000,
      ]),
    );
    let d = since(before);
    assert.equal(d.added, 1n, 'only the local end is in the map');
    assert.equal(d.redirected, 0n, 'nothing redirected to a remote peer');
    before = stats();
    exact(
      t,
      'plain namespace',
      await xfer('plain/client', ipOf('plain/server'), PORT, [
        '--up',
        5_000_000,
        '--down',
        5_000_000,
      ]),
    );
    d = since(before);
    assert.equal(d.added, 0n, 'no socket of a namespace without the annotation');
    assert.equal(d.redirected + d.passed, 0n, 'sk_msg never ran for them');
  });

  it('kill -9 of the agent under load: no byte lost or duplicated, the restart adopts', async (t) => {
    const node = 'node-0';
    const topology = lab.topology;
    const before = stats();
    const load = Promise.all([
      xfer('fast/client', clusterIP, 80, ['--up', GiB / 2, '--down', GiB / 2, '--seed', 40_000]),
      xfer('fast/client', clusterIP, 80, [
        '--up',
        1_000_000,
        '--down',
        1_000_000,
        '--duration-ms',
        6000,
        '--parallel',
        8,
        '--seed',
        50_000,
      ]),
    ]);
    await sleep(1500);
    const agent = liveAgent(topology, node);
    assert.ok(agent, 'the agent runs');
    process.kill(agent.pid, 'SIGKILL');
    await sleep(1500);
    assert.equal(liveAgent(topology, node), undefined, 'the agent is gone');
    const record = topology.nodes().find((n) => n.name === node);
    assert.ok(record);
    const restarted = startAgent(topology, stateDir, record);
    await waitProgrammed(topology, node, writtenClusterDigest(stateDir), restarted.log ?? '');
    const [long, many] = await load;
    exact(t, '512 MiB each way across the restart', long);
    t.diagnostic(`short connections across the restart: ${many.ok}`);
    assert.deepEqual(many.results, []);
    assert.ok(many.ok > 20, `connections kept working (${many.ok})`);
    const d = since(before);
    assert.ok(d['redirected-bytes'] >= BigInt(GiB), 'still redirected after the restart');
    assert.ok((await agentHealth(topology, node))?.ready);
    const log = readFileSync(restarted.log ?? '', 'utf8');
    assert.match(log, /"sockops":"updated"/, 'the sock_ops link was adopted in place');
  });

  it('a namespace losing its annotation mid-stream: sends move to the stack, byte-exact', async (t) => {
    const before = stats();
    const running = xfer('fast/client', clusterIP, 80, [
      '--up',
      GiB / 2,
      '--down',
      GiB / 2,
      '--seed',
      60_000,
    ]);
    for (let i = 0; i < 500 && since(before)['redirected-bytes'] < 100_000_000n; i++)
      await sleep(10);
    const file = join(stateDir, 'withdraw.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Namespace\nmetadata: { name: fast }\n');
    await lab.apply([file]);
    exact(t, '512 MiB each way while acceleration is withdrawn', await running);
    const d = since(before);
    t.diagnostic(`redirected ${d['redirected-bytes']} bytes, then passed ${d['passed-bytes']}`);
    assert.ok(d['passed-bytes'] > 0n, 'the rest went through the stack');
    assert.ok(d['redirected-bytes'] < BigInt(GiB), 'not everything was redirected');
  });
});
