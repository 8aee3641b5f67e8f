/**
 * Socket acceleration (bpf/sockops.c): a sock_ops program on the node's cgroup puts the
 * established TCP sockets of accelerated pods in a sockhash and applies per-connection TCP
 * tuning; an sk_msg program on the sockhash moves a send straight to the peer socket when both
 * ends are on this node. The codecs mirror bpf/include/sockmap.h and are checked against the
 * object's BTF at load.
 *
 * The agent loads sockRedirectSpec under the node's pin root (so the sockhash, and the sockets
 * in it, survive restarts), writes sockmap_pods and sockmap_tuning, attaches sock_ops to the
 * node's cgroup through a pinned link and sk_msg to the sockhash (the attachment belongs to
 * the map, so it is pinned with it).
 *
 * Backpressure: a redirect has no receive window, so the sk_msg program checks how much the
 * peer socket holds unread (through sockmap_socks) and sends through the stack, for good, once
 * that is too much (bpf/sockops.c, docs/socket-acceleration.md). `backlog_max` (.rodata) is the
 * per-connection bound.
 */
import { closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Codec } from '../bpf/codec.js';
import { be16, bytes, ipv4, pad, struct, u32, u64 } from '../bpf/codec.js';
import { BpfError } from '../bpf/errors.js';
import { mapInfoByFd } from '../bpf/info.js';
import { libbpf } from '../bpf/libbpf.js';
import type { BpfMap } from '../bpf/map.js';
import { perCpu, sumPerCpu } from '../bpf/map.js';
import type { BpfObject, BpfProgram, ObjectSpec } from '../bpf/object.js';
import { PinnedMap, openPinnedMap } from '../bpf/pinned.js';

export const TCP_CA_NAME_MAX = 16;

/** sockmap_pods flags (SOCKMAP_POD_*). */
export const PodFlag = { ACCELERATE: 1, TUNE: 2 } as const;
/** sockmap_tuning flags (SOCKMAP_TUNE_*). */
export const TuneFlag = {
  CONGESTION: 1,
  INITIAL_CWND: 2,
  FAST_OPEN: 4,
  NO_SLOW_START_AFTER_IDLE: 8,
} as const;
/** sockmap_conns flags (SOCKMAP_CONN_*). */
export const ConnFlag = { ACCELERATED: 1, TUNED: 2, TUNE_FAILED: 4, PASSIVE: 8 } as const;
/** sockmap_socks flags (SOCKMAP_SOCK_*). */
export const SockFlag = { FELL_BACK: 1 } as const;

/** enum sockmap_stat, in order. Never renumbered. */
export const SOCKMAP_STATS = [
  'added',
  'add-failed',
  'redirected',
  'redirected-bytes',
  'passed',
  'passed-bytes',
  'tuned',
  'tune-failed',
  'netns-mismatch',
  'closed',
  'fell-back',
  'fell-back-tcp-mem',
] as const;
export type SockmapStat = (typeof SOCKMAP_STATS)[number];

/** A NUL-terminated char array seen as a string. */
function cString(size: number): Codec<string> {
  const raw = bytes(size);
  return {
    name: `char[${size}]`,
    size,
    align: 1,
    encode: (v, b, o) => {
      const text = Buffer.alloc(size);
      text.write(v.slice(0, size - 1), 'latin1');
      raw.encode(text, b, o);
    },
    decode: (b, o) => {
      const text = raw.decode(b, o);
      const end = text.indexOf(0);
      return text.subarray(0, end < 0 ? size : end).toString('latin1');
    },
  };
}

export const SockmapPodKey = struct('sockmap_pod_key', { address: ipv4 });

export const SockmapPod = struct('sockmap_pod', {
  netns_cookie: u64,
  flags: u32,
  generation: u32,
});

export const SockmapTuningKey = struct('sockmap_tuning_key', {
  address: ipv4,
  port: be16,
  pad: pad(2),
});

export const SockmapTuning = struct('sockmap_tuning', {
  congestion: cString(TCP_CA_NAME_MAX),
  initial_cwnd: u32,
  flags: u32,
});

export const SockmapKey = struct('sockmap_key', {
  netns_cookie: u64,
  local_address: ipv4,
  remote_address: ipv4,
  local_port: be16,
  remote_port: be16,
  pad: pad(4),
});

export const SockmapConn = struct('sockmap_conn', {
  key: SockmapKey,
  congestion: cString(TCP_CA_NAME_MAX),
  flags: u32,
  tuning: u32,
});

/** A socket of the sockhash: its struct sock address (only BPF reads through it) and flags. */
export const SockmapSock = struct('sockmap_sock', {
  sk: u64,
  flags: u32,
  pad: pad(4),
});

export type SockmapPodValue = ReturnType<typeof SockmapPod.decode>;
export type SockmapTuningValue = ReturnType<typeof SockmapTuning.decode>;
export type SockmapKeyValue = ReturnType<typeof SockmapKey.decode>;
export type SockmapConnValue = ReturnType<typeof SockmapConn.decode>;

export const SOCK_REDIRECT_PROGRAMS = ['sockmap_sockops', 'sockmap_redirect'] as const;

export const sockRedirectMaps = {
  sockmap_pods: { key: SockmapPodKey, value: SockmapPod },
  sockmap_tuning: { key: SockmapTuningKey, value: SockmapTuning },
  // Values read from user space are socket cookies.
  sockmap_sockets: { key: SockmapKey, value: u64 },
  sockmap_conns: { key: u64, value: SockmapConn },
  sockmap_socks: { key: SockmapKey, value: SockmapSock },
  sockmap_stats: { key: u32, value: u64, perCpu: true, counters: true },
} as const;

export const sockRedirectSpec = {
  file: 'sockops.bpf.o',
  maps: sockRedirectMaps,
  programs: SOCK_REDIRECT_PROGRAMS,
  // A peer holding more unread bytes than this makes its senders fall back to the stack.
  // peer_probe_*: the keepalive of an accelerated socket with a local peer, so that a reset
  // the kernel dropped (its backlog over the socket's limit) is still noticed (sockops.c).
  rodata: {
    backlog_max: u32,
    peer_probe_idle_s: u32,
    peer_probe_interval_s: u32,
    peer_probe_count: u32,
  },
} as const satisfies ObjectSpec;

/** backlog_max as sockops.c sets it (the loader may lower it; tests do). */
export const DEFAULT_BACKLOG_MAX = 1024 * 1024 * 1024;

export type SockRedirectObject = BpfObject<typeof sockRedirectSpec.maps>;

const BPF_SK_MSG_VERDICT = 7;

/**
 * Attaches the sk_msg program to the sockhash. The attachment belongs to the map (pinned): it
 * outlives this process, and attaching again replaces the program in place for sockets added
 * from now on (a socket keeps the program it was added with, which uses the same pinned maps).
 */
export function attachSkMsgToMap(prog: BpfProgram, map: BpfMap<unknown, unknown>): void {
  const ret = libbpf.prog_attach(prog.fd, map.fd, BPF_SK_MSG_VERDICT, 0) as number;
  if (ret < 0) throw new BpfError('bpf_prog_attach', `${prog.name} on ${map.name}`, ret);
}

/** One connection sock_ops accelerated or tuned, as `sluice sock list` shows it. */
export interface SockConnection {
  cookie: bigint;
  netnsCookie: bigint;
  local: string;
  remote: string;
  /** The pod is the server (accepted). */
  passive: boolean;
  /** In the sockhash now (sends to a local accelerated peer bypass the stack). */
  accelerated: boolean;
  /** Its sends went back to the stack for good: the peer had queued too much unread. */
  fellBack: boolean;
  congestion: string;
  tuned: boolean;
  tuneFailed: boolean;
  /** Settings the matching tuning entry asked for. */
  tuning: string[];
}

export function tuningNames(flags: number): string[] {
  const names: string[] = [];
  if (flags & TuneFlag.CONGESTION) names.push('congestion');
  if (flags & TuneFlag.INITIAL_CWND) names.push('initial-cwnd');
  if (flags & TuneFlag.FAST_OPEN) names.push('fast-open');
  if (flags & TuneFlag.NO_SLOW_START_AFTER_IDLE) names.push('no-slow-start-after-idle');
  return names;
}

export interface SockRedirectReadout {
  connections: SockConnection[];
  stats: Record<SockmapStat, bigint>;
  pods: { address: string; netnsCookie: bigint; flags: number }[];
}

/**
 * Reads the connections and counters of a node's pinned socket-acceleration maps. A
 * connection counts as accelerated only while its socket is in the sockhash (the kernel
 * removes it on close; the record may outlive it until its close is seen).
 */
export function readSockRedirect(pinRoot: string): SockRedirectReadout {
  const conns = openPinnedMap(join(pinRoot, 'sockmap_conns'), sockRedirectMaps.sockmap_conns);
  const sockets = openPinnedMap(join(pinRoot, 'sockmap_sockets'), sockRedirectMaps.sockmap_sockets);
  const pods = openPinnedMap(join(pinRoot, 'sockmap_pods'), sockRedirectMaps.sockmap_pods);
  const socks = openPinnedMap(join(pinRoot, 'sockmap_socks'), sockRedirectMaps.sockmap_socks);
  try {
    const inHash = new Set<bigint>();
    for (const [, cookie] of sockets.entries()) inHash.add(cookie);
    const connections: SockConnection[] = [];
    for (const [cookie, c] of conns.entries()) {
      connections.push({
        cookie,
        netnsCookie: c.key.netns_cookie,
        local: `${c.key.local_address}:${c.key.local_port}`,
        remote: `${c.key.remote_address}:${c.key.remote_port}`,
        passive: (c.flags & ConnFlag.PASSIVE) !== 0,
        accelerated: (c.flags & ConnFlag.ACCELERATED) !== 0 && inHash.has(cookie),
        fellBack: ((socks.lookup(c.key)?.flags ?? 0) & SockFlag.FELL_BACK) !== 0,
        congestion: c.congestion,
        tuned: (c.flags & ConnFlag.TUNED) !== 0,
        tuneFailed: (c.flags & ConnFlag.TUNE_FAILED) !== 0,
        tuning: tuningNames(c.tuning),
      });
    }
    connections.sort((a, b) => (a.local + a.remote).localeCompare(b.local + b.remote));
    return {
      connections,
      stats: readSockmapStats(pinRoot),
      pods: [...pods.entries()].map(([k, v]) => ({
        address: k.address,
        netnsCookie: v.netns_cookie,
        flags: v.flags,
      })),
    };
  } finally {
    conns.close();
    sockets.close();
    pods.close();
    socks.close();
  }
}

/** The per-CPU counters of sockmap_stats, summed, by name. */
export function readSockmapStats(pinRoot: string): Record<SockmapStat, bigint> {
  const path = join(pinRoot, 'sockmap_stats');
  const fd = libbpf.obj_get(path) as number;
  if (fd < 0) throw new BpfError('bpf_obj_get', path, fd);
  let map: PinnedMap<number, bigint[]>;
  try {
    const info = mapInfoByFd(fd, path);
    map = new PinnedMap(
      path,
      {
        name: info.name,
        fd,
        type: info.type,
        keySize: info.keySize,
        valueSize: info.valueSize,
        maxEntries: info.maxEntries,
      },
      u32,
      perCpu(u64),
    );
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  try {
    const out = {} as Record<SockmapStat, bigint>;
    SOCKMAP_STATS.forEach((name, i) => {
      const v = map.lookup(i);
      out[name] = v ? sumPerCpu(v) : 0n;
    });
    return out;
  } finally {
    map.close();
  }
}

/** `sluice sock list` as a table: one line per connection, then the counters. */
export function formatSockList(node: string, readout: SockRedirectReadout): string {
  const header = ['LOCAL', 'REMOTE', 'SIDE', 'ACCELERATED', 'CONGESTION', 'TUNING'];
  const rows = readout.connections.map((c) => [
    c.local,
    c.remote,
    c.passive ? 'server' : 'client',
    c.accelerated ? (c.fellBack ? 'fell back' : 'yes') : 'no',
    c.congestion,
    c.tuning.length === 0 ? '-' : `${c.tuning.join(',')}${c.tuneFailed ? ' (failed)' : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const s = readout.stats;
  return [
    `node ${node}: ${readout.connections.length} connection(s), ${readout.pods.length} pod(s) accelerated or tuned`,
    line(header),
    ...rows.map(line),
    `redirected ${s.redirected} sends (${s['redirected-bytes']} bytes), passed ${s.passed} (${s['passed-bytes']} bytes); sockets added ${s.added}, closed ${s.closed}, add failures ${s['add-failed']}, netns mismatches ${s['netns-mismatch']}, tuned ${s.tuned} (${s['tune-failed']} failed), fell back to the stack ${s['fell-back']} (backlog over backlog_max) + ${s['fell-back-tcp-mem']} (backlog over the receive buffer, TCP memory over tcp_mem[0])`,
    '',
  ].join('\n');
}

/**
 * The congestion control algorithms this kernel offers now (built in or loaded modules):
 * what bpf_setsockopt(TCP_CONGESTION) accepts from sock_ops, which never loads a module.
 */
export function availableCongestionControls(
  path = '/proc/sys/net/ipv4/tcp_available_congestion_control',
): string[] {
  return readFileSync(path, 'utf8').trim().split(/\s+/).filter(Boolean);
}
