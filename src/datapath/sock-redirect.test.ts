/**
 * Socket acceleration on the real kernel: sockops.c loaded, sock_ops attached to a throwaway
 * cgroup, sk_msg to the sockhash, a server (sock_xfer) in one namespace of a veth pair and
 * clients in the other, both in the cgroup. Transfers are checked byte for byte by sock_xfer;
 * the counters of sockmap_stats say whether the bytes were redirected or went through the stack.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { attachCgroup, attachSkMsg } from '../bpf/attach.js';
import { sumPerCpu } from '../bpf/map.js';
import { loadObject } from '../bpf/object.js';
import { withTestCgroup } from '../testing/cgroup.js';
import type { VethPair } from '../testing/netns.js';
import { inNetns, withVethPair } from '../testing/netns.js';
import { requireKernel } from '../testing/privileges.js';
import type { SockRedirectObject, SockmapStat } from './sock-redirect.js';
import {
  ConnFlag,
  PodFlag,
  SOCKMAP_STATS,
  SockFlag,
  TuneFlag,
  sockRedirectSpec,
} from './sock-redirect.js';

const execFileAsync = promisify(execFile);
const SOCK_XFER = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../native/.output/sock_xfer',
);
const PORT = 7100;

interface XferResult {
  ok: number;
  failed: number;
  connections: number;
  results: string[];
}

/** Runs sock_xfer's client in the cgroup and namespace; resolves with its summary. */
async function xfer(cgroup: string, ns: string, host: string, args: string[]): Promise<XferResult> {
  const r = await execFileAsync(
    'sh',
    [
      '-c',
      'echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec "$@"',
      'sh',
      cgroup,
      ns,
      SOCK_XFER,
      'client',
      host,
      String(PORT),
      ...args,
    ],
    { maxBuffer: 1 << 20, timeout: 300_000 },
  );
  return JSON.parse(r.stdout) as XferResult;
}

/** One small exchange each way on a connection then held open 1.5 s, to look at it meanwhile. */
function heldConnection(cgroup: string, ns: string, host: string): Promise<XferResult> {
  return xfer(cgroup, ns, host, ['--up', '1000', '--down', '1000', '--hold-ms', '1500']);
}

/** Starts sock_xfer's server in the cgroup and namespace; resolves once it listens. */
async function startServer(
  cgroup: string,
  ns: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(
    'sh',
    [
      '-c',
      'echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec "$@"',
      'sh',
      cgroup,
      ns,
      SOCK_XFER,
      'serve',
      String(PORT),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  let buffered = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  for (let i = 0; i < 100 && !lines.includes(`listening ${PORT}`); i++) await sleep(20);
  assert.ok(lines.includes(`listening ${PORT}`), 'the server listens');
  return { child, lines };
}

/** Ends the server and its forked children (all in the throwaway cgroup), waits for them. */
async function stopServer(child: ChildProcess, cgroup: string): Promise<void> {
  const { readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(`${cgroup}/cgroup.kill`, '1');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  for (let i = 0; i < 200 && readFileSync(`${cgroup}/cgroup.procs`, 'utf8').trim() !== ''; i++) {
    await sleep(10);
  }
}

function stats(obj: SockRedirectObject): Record<SockmapStat, bigint> {
  const out = {} as Record<SockmapStat, bigint>;
  SOCKMAP_STATS.forEach((name, i) => {
    const v = obj.maps.sockmap_stats.lookup(i);
    out[name] = v ? sumPerCpu(v) : 0n;
  });
  return out;
}

function delta(
  after: Record<SockmapStat, bigint>,
  before: Record<SockmapStat, bigint>,
): Record<SockmapStat, bigint> {
  const out = {} as Record<SockmapStat, bigint>;
  for (const name of SOCKMAP_STATS) out[name] = after[name] - before[name];
  return out;
}

/** A loaded, attached sockops object on a throwaway cgroup and veth pair. */
async function withAcceleration(
  fn: (ctx: {
    obj: SockRedirectObject;
    cgroup: string;
    pair: VethPair;
    server: { lines: string[] };
  }) => Promise<void>,
  serverArgs: string[] = [],
  rodata: Record<string, number> = {},
): Promise<void> {
  requireKernel();
  await withTestCgroup(async (cgroup) => {
    await withVethPair(async (pair) => {
      using obj = loadObject(sockRedirectSpec, { rodata });
      using sockops = attachCgroup(obj.program('sockmap_sockops'), cgroup);
      using skmsg = attachSkMsg(obj.program('sockmap_redirect'), obj.maps.sockmap_sockets);
      void sockops;
      void skmsg;
      const server = await startServer(cgroup, pair.peerNs, serverArgs);
      try {
        await fn({ obj, cgroup, pair, server });
      } finally {
        await stopServer(server.child, cgroup);
      }
    });
  });
}

const accelerate = (obj: SockRedirectObject, ...addresses: string[]): void => {
  for (const address of addresses) {
    obj.maps.sockmap_pods.update(
      { address },
      { netns_cookie: 0n, flags: PodFlag.ACCELERATE, generation: 1 },
    );
  }
};

describe('socket acceleration datapath (sockops.c)', () => {
  it('redirects between two accelerated local sockets, byte-exact both ways', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr, pair.peerAddr);
      const before = stats(obj);
      const r = await xfer(cgroup, pair.ns, pair.peerAddr, [
        '--up',
        '8000000',
        '--down',
        '3000000',
        '--conns',
        '6',
        '--parallel',
        '3',
        '--max-chunk',
        '70000',
      ]);
      assert.deepEqual(r.results, []);
      assert.equal(r.ok, 6);
      const d = delta(stats(obj), before);
      assert.equal(d.added, 12n, 'both ends of every connection went into the sockhash');
      assert.ok(d.redirected > 0n, 'sends were redirected');
      // Every payload byte of both directions (headers and the status byte included) skipped
      // the stack; only a send racing the peer's establishment may have passed.
      assert.ok(d['redirected-bytes'] >= 6n * 11_000_000n, `redirected ${d['redirected-bytes']}`);
      for (const [pod, value] of obj.maps.sockmap_pods.entries()) {
        assert.notEqual(value.netns_cookie, 0n, `${pod.address}: netns learnt`);
      }
    });
  });

  it('redirects to a dual-stack server too (accepted IPv4 sockets are v4-mapped AF_INET6)', async () => {
    await withAcceleration(
      async ({ obj, cgroup, pair }) => {
        accelerate(obj, pair.addr, pair.peerAddr);
        const before = stats(obj);
        const r = await xfer(cgroup, pair.ns, pair.peerAddr, [
          '--up',
          '3000000',
          '--down',
          '3000000',
        ]);
        assert.deepEqual(r.results, []);
        assert.equal(r.ok, 1);
        const d = delta(stats(obj), before);
        assert.equal(d.added, 2n);
        assert.ok(d['redirected-bytes'] >= 6_000_000n, `redirected ${d['redirected-bytes']}`);
      },
      ['--dual-stack'],
    );
  });

  it('leaves a connection whose peer is not accelerated to the stack', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr); // the client only
      const before = stats(obj);
      const r = await xfer(cgroup, pair.ns, pair.peerAddr, [
        '--up',
        '2000000',
        '--down',
        '2000000',
      ]);
      assert.equal(r.ok, 1, r.results.join('; '));
      const d = delta(stats(obj), before);
      assert.equal(d.added, 1n);
      assert.equal(d.redirected, 0n);
      assert.ok(d['passed-bytes'] >= 2_000_000n);
    });
  });

  it('records connections and drops the records when they close', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr, pair.peerAddr);
      const held = heldConnection(cgroup, pair.ns, pair.peerAddr);
      let records: { flags: number; local: string }[] = [];
      for (let i = 0; i < 100 && records.length < 2; i++) {
        await sleep(20);
        records = [...obj.maps.sockmap_conns.entries()].map(([, c]) => ({
          flags: c.flags,
          local: `${c.key.local_address}:${c.key.local_port}`,
        }));
      }
      const keys = [...obj.maps.sockmap_sockets.keys()];
      assert.equal(records.length, 2, 'both ends recorded');
      assert.ok(records.every((c) => c.flags & ConnFlag.ACCELERATED));
      assert.ok(
        records.some((c) => c.local === `${pair.peerAddr}:${PORT}`),
        'the server side by its port',
      );
      assert.equal(keys.length, 2);
      assert.ok(keys.some((k) => k.local_address === pair.addr && k.remote_port === PORT));
      assert.equal((await held).ok, 1);
      for (let i = 0; i < 100 && [...obj.maps.sockmap_conns.keys()].length > 0; i++)
        await sleep(20);
      assert.equal([...obj.maps.sockmap_conns.keys()].length, 0, 'records dropped on close');
      assert.equal(
        [...obj.maps.sockmap_sockets.keys()].length,
        0,
        'the kernel emptied the sockhash',
      );
    });
  });

  it('keys by network namespace: the same addresses in another namespace never match', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr, pair.peerAddr);
      // Teach both addresses their namespaces.
      assert.equal(
        (await xfer(cgroup, pair.ns, pair.peerAddr, ['--up', '10', '--down', '10'])).ok,
        1,
      );
      // A second pair of namespaces with the very same addresses, in the same cgroup.
      await withVethPair(async (twin) => {
        const server = await startServer(cgroup, twin.peerNs);
        try {
          const before = stats(obj);
          const r = await xfer(cgroup, twin.ns, twin.peerAddr, [
            '--up',
            '3000000',
            '--down',
            '3000000',
          ]);
          assert.equal(r.ok, 1, r.results.join('; '));
          const d = delta(stats(obj), before);
          assert.equal(d['netns-mismatch'], 2n, 'both twin sockets refused');
          assert.equal(d.added, 0n);
          assert.equal(d.redirected, 0n);
        } finally {
          server.child.kill('SIGKILL');
        }
      });
    });
  });

  // Only the sending side is taken out: when a socket leaves every map the kernel frees its
  // psock with whatever redirected bytes it had not read yet, so sluice never removes a live
  // socket itself (a pod losing acceleration stops redirecting; its sockets leave on close).
  it('a sending socket removed from the sockhash mid-stream falls back to the stack, byte-exact', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr, pair.peerAddr);
      const before = stats(obj);
      const running = xfer(cgroup, pair.ns, pair.peerAddr, [
        '--up',
        '600000000',
        '--down',
        '0',
        '--max-chunk',
        '200000',
      ]);
      // Wait until bytes flow redirected, then take the client's socket out of the map.
      for (let i = 0; i < 500 && delta(stats(obj), before)['redirected-bytes'] < 50_000_000n; i++) {
        await sleep(10);
      }
      const removed = [...obj.maps.sockmap_sockets.keys()].filter(
        (k) => k.local_address === pair.addr,
      );
      for (const k of removed) obj.maps.sockmap_sockets.delete(k);
      const r = await running;
      assert.deepEqual(r.results, []);
      assert.equal(r.ok, 1);
      assert.equal(removed.length, 1, 'the client socket was in the map and removed');
      const d = delta(stats(obj), before);
      assert.ok(d['redirected-bytes'] >= 50_000_000n, 'bytes were redirected before the removal');
      assert.ok(d['redirected-bytes'] < 600_000_000n, 'and the rest went through the stack');
    });
  });

  // A redirect has no receive window: without backpressure a sender faster than its reader
  // piles everything up on the reader's socket (and under TCP memory pressure send() fails
  // with ENOMEM). With backlog_max lowered to 4 MiB, a bulk sender against a reader that
  // pauses after every read must switch to the stack once, for good, and stay byte-exact.
  it('a sender outrunning a slow reader falls back to the stack for good, byte-exact', async () => {
    const backlogMax = 4 * 1024 * 1024;
    const up = 48 * 1024 * 1024;
    await withAcceleration(
      async ({ obj, cgroup, pair }) => {
        accelerate(obj, pair.addr, pair.peerAddr);
        const before = stats(obj);
        const running = xfer(cgroup, pair.ns, pair.peerAddr, [
          '--up',
          String(up),
          '--down',
          '1000',
          '--max-chunk',
          '65536',
          '--read-pause-us',
          '500',
          '--hold-ms',
          '1500',
        ]);
        // While the finished connection is held open: the client's socket is flagged.
        let flagged: { local: string; flags: number }[] = [];
        for (let i = 0; i < 1500 && flagged.length === 0; i++) {
          await sleep(20);
          flagged = [...obj.maps.sockmap_socks.entries()]
            .filter(([, v]) => v.flags & SockFlag.FELL_BACK)
            .map(([k, v]) => ({ local: `${k.local_address}:${k.local_port}`, flags: v.flags }));
        }
        const r = await running;
        assert.deepEqual(r.results, [], 'no send failed (ENOMEM or other), every byte exact');
        assert.equal(r.ok, 1);
        const d = delta(stats(obj), before);
        assert.equal(
          d['fell-back'] + d['fell-back-tcp-mem'],
          1n,
          'one sending socket switched to the stack',
        );
        assert.equal(flagged.length, 1, 'the client socket is flagged in sockmap_socks');
        assert.ok(flagged[0]?.local.startsWith(`${pair.addr}:`), `flagged ${flagged[0]?.local}`);
        assert.ok(d['redirected-bytes'] > 0n, 'it was redirected at first');
        assert.ok(
          d['redirected-bytes'] < BigInt(up),
          `the rest went through the stack (redirected ${d['redirected-bytes']})`,
        );
        assert.ok(d['passed-bytes'] >= BigInt(up) - d['redirected-bytes']);
      },
      [],
      { backlog_max: backlogMax },
    );
  });

  // A reset can be lost: redirected bytes are charged to the receiver's sk_rmem_alloc with no
  // window to bound them, and a segment arriving while the receiver is inside recv() or send()
  // is dropped by tcp_add_backlog() once that is over the socket's backlog limit; TCP
  // retransmits data and FIN, never an RST. Here nftables drops every RST+ACK (what an abort
  // sends) in the server's namespace, so the loss is certain: each server connection, having
  // read every byte and waiting for more, must still learn of the reset, from the keepalive
  // probe sock_ops armed (the aborted client's kernel answers it with a bare RST, let through).
  it('a peer reset the kernel dropped is still noticed: sock_ops arms a probe of the local peer', async () => {
    await withAcceleration(
      async ({ obj, cgroup, pair, server }) => {
        accelerate(obj, pair.addr, pair.peerAddr);
        const held = heldConnection(cgroup, pair.ns, pair.peerAddr);
        let ss = '';
        for (let i = 0; i < 100 && !ss.includes('keepalive'); i++) {
          await sleep(20);
          ss = inNetns(pair.peerNs, 'ss', ['-tonH', 'sport', `= :${PORT}`]);
        }
        assert.equal((await held).ok, 1);
        assert.match(ss, /timer:\(keepalive,/, `the server's socket probes its peer:\n${ss}`);

        inNetns(pair.peerNs, 'nft', [
          'add table inet sl_test; add chain inet sl_test input { type filter hook input priority 0; }; ' +
            'add rule inet sl_test input tcp flags & (rst | ack) == rst | ack counter drop',
        ]);
        const before = server.lines.length;
        const r = await xfer(cgroup, pair.ns, pair.peerAddr, [
          '--up',
          '50000000',
          '--down',
          '0',
          '--rst-after',
          '3000000',
          '--conns',
          '4',
          '--parallel',
          '4',
        ]);
        assert.deepEqual(r.results, []);
        assert.equal(r.ok, 4);
        // Every server connection ends with a line: sock_xfer gives up on a connection that
        // hears nothing for 30 s ('bad ... err=110'), so the loop only has to outlast that.
        let outcomes: string[] = [];
        for (let i = 0; i < 2000 && outcomes.length < 4; i++) {
          await sleep(20);
          outcomes = server.lines.slice(before).filter((l) => /^(reset|closed|ok|bad)/.test(l));
        }
        assert.deepEqual(
          outcomes,
          Array<string>(4).fill('reset at 3000000'),
          'every reset noticed',
        );
        const dropped = /counter packets (\d+)/.exec(
          inNetns(pair.peerNs, 'nft', ['list', 'chain', 'inet', 'sl_test', 'input']),
        )?.[1];
        assert.ok(Number(dropped) >= 4, `the aborts' RSTs were dropped (${dropped})`);
      },
      [],
      { peer_probe_idle_s: 1, peer_probe_interval_s: 1 },
    );
  });

  it('tunes a connection: congestion control and initial window by the server port', async () => {
    await withAcceleration(async ({ obj, cgroup, pair }) => {
      accelerate(obj, pair.addr, pair.peerAddr);
      // An algorithm other than the namespace's default, so the change is visible.
      const fallback = inNetns(pair.peerNs, 'cat', [
        '/proc/sys/net/ipv4/tcp_congestion_control',
      ]).trim();
      const algorithm = fallback === 'cubic' ? 'bbr' : 'cubic';
      obj.maps.sockmap_pods.update(
        { address: pair.peerAddr },
        { netns_cookie: 0n, flags: PodFlag.ACCELERATE | PodFlag.TUNE, generation: 1 },
      );
      obj.maps.sockmap_tuning.update(
        { address: pair.peerAddr, port: PORT },
        {
          congestion: algorithm,
          initial_cwnd: 20,
          flags: TuneFlag.CONGESTION | TuneFlag.INITIAL_CWND,
        },
      );
      const held = heldConnection(cgroup, pair.ns, pair.peerAddr);
      let server: { flags: number; congestion: string } | undefined;
      for (let i = 0; i < 100 && !server; i++) {
        await sleep(20);
        server = [...obj.maps.sockmap_conns.entries()]
          .map(([, c]) => c)
          .find((c) => c.flags & ConnFlag.PASSIVE);
      }
      // The kernel's own view of the server's socket, from its namespace.
      const ss = inNetns(pair.peerNs, 'ss', ['-tinH', 'sport', `= :${PORT}`]);
      const client = inNetns(pair.ns, 'ss', ['-tinH', 'dport', `= :${PORT}`]);
      assert.equal((await held).ok, 1);
      assert.ok(server, 'the server side is recorded');
      assert.equal(server.congestion, algorithm);
      assert.ok(server.flags & ConnFlag.TUNED);
      assert.equal(server.flags & ConnFlag.TUNE_FAILED, 0);
      const ccOf = (text: string) => /^\s+(\S+) /m.exec(text)?.[1];
      assert.equal(ccOf(ss), algorithm, `ss shows ${algorithm} on the server side:\n${ss}`);
      assert.equal(ccOf(client), fallback, `the client keeps the default:\n${client}`);
    });
  });
});
