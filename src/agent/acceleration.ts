/**
 * The agent's socket acceleration (docs/socket-acceleration.md): from the cluster state to
 * bpf/sockops.c's maps, and the sysctls of pods' network namespaces that have no per-socket
 * equivalent. Called from one place in the agent's reconcile; owns everything else itself.
 *
 *   planAcceleration (pure)   which pods of this node are accelerated or tuned, with what
 *   SocketAcceleration        loads/adopts sockops.c under the pin root, attaches sock_ops to
 *                             the node's cgroup (pinned link) and sk_msg to the sockhash, writes
 *                             the smallest change to sockmap_pods / sockmap_tuning, applies the
 *                             namespace sysctls (retried until the pod's processes exist).
 *
 * Sockets are never taken out of the sockhash here: a socket leaving every map loses the
 * redirected bytes its application has not read yet (the kernel frees its queue). A pod that
 * loses acceleration keeps its sockets in the map until they close, and its sends go through the
 * stack from the next one on (sk_msg checks the pod's flags on every send).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { attachCgroupPinned, detachCgroupPinned } from '../bpf/attach.js';
import type { PersistentOutcome } from '../bpf/attach.js';
import { openPinnedMap } from '../bpf/pinned.js';
import { loadObject } from '../bpf/object.js';
import type { SockRedirectObject, SockmapTuningValue } from '../datapath/sock-redirect.js';
import {
  PodFlag,
  TuneFlag,
  attachSkMsgToMap,
  sockRedirectMaps,
  sockRedirectSpec,
} from '../datapath/sock-redirect.js';
import type { ClusterState } from '../model/index.js';
import { isAccelerated, podTuning, tuningRules } from '../model/traffic-optimization.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';

/** net.ipv4.tcp_fastopen: client (1) and server (2) on, and servers without TCP_FASTOPEN (0x400). */
export const FAST_OPEN_SYSCTL = String(0x403);
const SYSCTL_RETRY_MS = 2_000;
export const SOCKOPS_LINK = 'cgroup_sockmap_sockops';

export interface PlannedPod {
  /** namespace/name */
  pod: string;
  flags: number;
  generation: number;
  /** Namespace sysctls, e.g. net.ipv4.tcp_slow_start_after_idle -> 0. */
  sysctls: Record<string, string>;
}

export interface AccelerationPlan {
  /** By pod address. */
  pods: Map<string, PlannedPod>;
  /** By `address:port` (port 0: every port). */
  tuning: Map<string, { address: string; port: number; value: SockmapTuningValue }>;
}

/** A pod's identity as a u32: a pod recreated with the same address re-learns its netns. */
export function podGeneration(uid: string, key: string, ip: string): number {
  return createHash('sha256')
    .update(uid !== '' ? uid : `${key} ${ip}`)
    .digest()
    .readUInt32LE(0);
}

/** What this node's pods should get: pure, from the state. */
export function planAcceleration(state: ClusterState, nodeName: string): AccelerationPlan {
  const rules = tuningRules(state);
  const plan: AccelerationPlan = { pods: new Map(), tuning: new Map() };
  // A pod with a node's address shares the node's network namespace (hostNetwork): its
  // sockets are the node's, never accelerated or tuned.
  const nodeIPs = new Set([...state.nodes.values()].map((n) => n.ip));
  const pods = [...state.pods.values()]
    .filter((p) => p.nodeName === nodeName && !p.virtual && p.ip !== '' && !nodeIPs.has(p.ip))
    .sort((a, b) => a.ip.localeCompare(b.ip));
  for (const pod of pods) {
    const key = `${pod.namespace}/${pod.name}`;
    const accelerate = isAccelerated(state.namespaces.get(pod.namespace));
    const tuning = podTuning(rules, pod);
    if (!accelerate && tuning.length === 0) continue;
    if (plan.pods.has(pod.ip)) continue; // two pods claim one address: the first keeps it
    const sysctls: Record<string, string> = {};
    for (const t of tuning) {
      const s = t.settings;
      let flags = 0;
      if (s.congestionControl !== undefined) flags |= TuneFlag.CONGESTION;
      if (s.initialCongestionWindow !== undefined) flags |= TuneFlag.INITIAL_CWND;
      if (s.fastOpen) {
        flags |= TuneFlag.FAST_OPEN;
        sysctls['net.ipv4.tcp_fastopen'] = FAST_OPEN_SYSCTL;
      }
      if (s.noSlowStartAfterIdle) {
        flags |= TuneFlag.NO_SLOW_START_AFTER_IDLE;
        sysctls['net.ipv4.tcp_slow_start_after_idle'] = '0';
      }
      plan.tuning.set(`${pod.ip}:${t.port}`, {
        address: pod.ip,
        port: t.port,
        value: {
          congestion: s.congestionControl ?? '',
          initial_cwnd: s.initialCongestionWindow ?? 0,
          flags,
        },
      });
    }
    plan.pods.set(pod.ip, {
      pod: key,
      flags: (accelerate ? PodFlag.ACCELERATE : 0) | (tuning.length > 0 ? PodFlag.TUNE : 0),
      generation: podGeneration(pod.uid, key, pod.ip),
      sysctls,
    });
  }
  return plan;
}

export interface AccelerationChange {
  podsWritten: number;
  podsRemoved: number;
  tuningWritten: number;
  tuningRemoved: number;
}

/** Writes the difference between the maps and the plan; tuning before the pods that use it. */
export function applyAccelerationPlan(
  maps: Pick<SockRedirectObject['maps'], 'sockmap_pods' | 'sockmap_tuning'>,
  plan: AccelerationPlan,
): AccelerationChange {
  const change: AccelerationChange = {
    podsWritten: 0,
    podsRemoved: 0,
    tuningWritten: 0,
    tuningRemoved: 0,
  };
  const tuningNow = new Map(
    [...maps.sockmap_tuning.entries()].map(([k, v]) => [`${k.address}:${k.port}`, v]),
  );
  for (const [id, t] of plan.tuning) {
    const now = tuningNow.get(id);
    if (
      now &&
      now.congestion === t.value.congestion &&
      now.initial_cwnd === t.value.initial_cwnd &&
      now.flags === t.value.flags
    )
      continue;
    maps.sockmap_tuning.update({ address: t.address, port: t.port }, t.value);
    change.tuningWritten++;
  }
  const podsNow = new Map([...maps.sockmap_pods.entries()].map(([k, v]) => [k.address, v]));
  for (const [address, p] of plan.pods) {
    const now = podsNow.get(address);
    if (now && now.flags === p.flags && now.generation === p.generation) continue;
    // The same pod keeps the namespace its sockets taught; another pod starts over.
    const netns = now && now.generation === p.generation ? now.netns_cookie : 0n;
    maps.sockmap_pods.update(
      { address },
      { netns_cookie: netns, flags: p.flags, generation: p.generation },
    );
    change.podsWritten++;
  }
  for (const address of podsNow.keys()) {
    if (plan.pods.has(address)) continue;
    maps.sockmap_pods.delete({ address });
    change.podsRemoved++;
  }
  for (const id of tuningNow.keys()) {
    if (plan.tuning.has(id)) continue;
    const [address = '', port = '0'] = id.split(':');
    maps.sockmap_tuning.delete({ address, port: Number(port) });
    change.tuningRemoved++;
  }
  return change;
}

// ---- the pods' network namespaces --------------------------------------------------------

/** Pids of the cgroup and its descendants. */
function cgroupPids(path: string): number[] {
  const pids: number[] = [];
  const walk = (dir: string): void => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line.trim() !== '') pids.push(Number(line));
      }
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(dir, entry.name));
      }
    } catch {
      /* a cgroup removed while walking */
    }
  };
  walk(path);
  return pids;
}

/** The local IPv4 addresses of a network namespace, from a process in it (fib_trie). */
function localAddresses(pid: number): string[] {
  const out = new Set<string>();
  let last = '';
  for (const line of readFileSync(`/proc/${pid}/net/fib_trie`, 'utf8').split('\n')) {
    const address = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line)?.[1];
    if (address) last = address;
    else if (line.includes('/32 host LOCAL') && last !== '') out.add(last);
  }
  return [...out];
}

/** Pod address -> a pid in the namespace that holds it, for the processes of the cgroup. */
export function podNetnsByAddress(cgroupPath: string): Map<string, { pid: number; netns: string }> {
  const own = readlinkSync('/proc/self/ns/net');
  const seen = new Set<string>();
  const out = new Map<string, { pid: number; netns: string }>();
  for (const pid of cgroupPids(cgroupPath)) {
    try {
      const netns = readlinkSync(`/proc/${pid}/ns/net`);
      if (netns === own || seen.has(netns)) continue;
      seen.add(netns);
      for (const address of localAddresses(pid)) out.set(address, { pid, netns });
    } catch {
      /* the process exited */
    }
  }
  return out;
}

/** Reads or writes a sysctl inside the network namespace of pid. */
function netnsSysctl(pid: number, key: string, value?: string): string {
  const args = [`--net=/proc/${pid}/ns/net`, '--', 'sysctl', '-n'];
  args.push(value === undefined ? key : `-w`);
  if (value !== undefined) args.push(`${key}=${value}`);
  return execFileSync('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();
}

// ---- the live part -------------------------------------------------------------------------

interface AppliedSysctl {
  value: string;
  /** What the namespace had before: restored when no rule wants the setting any more. */
  before: string;
  pid: number;
}

export interface AccelerationStatus {
  enabled: boolean;
  pods: number;
  tuning: number;
  /** Pods whose namespace sysctls wait for a process of the pod. */
  sysctlsPending: string[];
}

/**
 * Socket acceleration of one node. `start` with acceleration disabled withdraws what an earlier
 * run left (the sock_ops link, the pods' flags), so no socket is added or redirected any more.
 */
export class SocketAcceleration {
  private plan: AccelerationPlan = { pods: new Map(), tuning: new Map() };
  /** netns -> sysctl -> {value we set, value before}: restored when no longer wanted. */
  private applied = new Map<string, Map<string, AppliedSysctl>>();
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly obj: SockRedirectObject | undefined,
    private readonly cgroupPath: string,
    private readonly logger: Logger,
  ) {}

  static start(config: AgentConfig, logger: Logger): SocketAcceleration {
    const linkPin = join(config.pinRoot, 'links', SOCKOPS_LINK);
    const cgroupPath = config.socketLB.cgroupPath ?? '';
    if (!config.socketAcceleration.enabled) {
      withdrawAcceleration(config.pinRoot, logger);
      return new SocketAcceleration(undefined, cgroupPath, logger);
    }
    let obj: SockRedirectObject | undefined;
    let outcome: PersistentOutcome;
    try {
      const maxEntries = Object.fromEntries(
        Object.entries(config.maps.maxEntries).filter(([name]) =>
          Object.hasOwn(sockRedirectSpec.maps, name),
        ),
      );
      obj = loadObject(sockRedirectSpec, {
        pinRoot: config.pinRoot,
        maxEntries,
        onPinReplaced: (map, change) =>
          logger.warn(
            { map, pinRoot: config.pinRoot },
            `${map}: the pinned map had another shape (${change}); replaced, its counts start from 0`,
          ),
      });
      // sk_msg first: a socket sock_ops adds must find the verdict program on the map.
      attachSkMsgToMap(obj.program('sockmap_redirect'), obj.maps.sockmap_sockets);
      outcome = attachCgroupPinned(obj.program('sockmap_sockops'), cgroupPath, linkPin);
    } catch (error) {
      obj?.close();
      throw new AgentError(
        'AGENT_DATAPATH',
        `socket acceleration under ${config.pinRoot}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    logger.info(
      { cgroup: cgroupPath, sockops: outcome, pinRoot: config.pinRoot },
      'socket acceleration attached',
    );
    return new SocketAcceleration(obj, cgroupPath, logger);
  }

  /** Programs the plan for this state; applies the namespace sysctls it can. */
  reconcile(state: ClusterState, nodeName: string): AccelerationChange | undefined {
    if (!this.obj) return undefined;
    this.plan = planAcceleration(state, nodeName);
    const change = applyAccelerationPlan(this.obj.maps, this.plan);
    if (Object.values(change).some((n) => n > 0)) {
      this.logger.info(
        { ...change, pods: this.plan.pods.size, tuning: this.plan.tuning.size },
        'socket acceleration programmed',
      );
    }
    this.syncSysctls();
    return change;
  }

  status(): AccelerationStatus {
    return {
      enabled: this.obj !== undefined,
      pods: this.plan.pods.size,
      tuning: this.plan.tuning.size,
      sysctlsPending: [...this.pending],
    };
  }

  /** Closes this process's fds; the link, the maps and the sockets in them stay. */
  close(): void {
    clearTimeout(this.timer);
    this.obj?.close();
  }

  private syncSysctls(): void {
    clearTimeout(this.timer);
    const wanted = [...this.plan.pods.entries()].filter(([, p]) => Object.keys(p.sysctls).length);
    const hasApplied = [...this.applied.values()].some((m) => m.size > 0);
    if (wanted.length === 0 && !hasApplied) {
      this.pending = [];
      return;
    }
    let netnsOf: Map<string, { pid: number; netns: string }>;
    try {
      netnsOf = podNetnsByAddress(this.cgroupPath);
    } catch (error) {
      this.logger.warn({ err: error }, 'listing the pods network namespaces failed');
      netnsOf = new Map();
    }
    const pending: string[] = [];
    const keep = new Map<string, Set<string>>();
    for (const [address, p] of wanted) {
      const where = netnsOf.get(address);
      if (!where) {
        pending.push(p.pod);
        continue;
      }
      const done = this.applied.get(where.netns) ?? new Map<string, AppliedSysctl>();
      this.applied.set(where.netns, done);
      const kept = keep.get(where.netns) ?? new Set<string>();
      keep.set(where.netns, kept);
      for (const [key, value] of Object.entries(p.sysctls)) {
        kept.add(key);
        if (done.get(key)?.value === value) continue;
        try {
          const before = done.get(key)?.before ?? netnsSysctl(where.pid, key);
          netnsSysctl(where.pid, key, value);
          done.set(key, { value, before, pid: where.pid });
          this.logger.info({ pod: p.pod, sysctl: key, value, before }, 'pod sysctl set');
        } catch (error) {
          pending.push(p.pod);
          this.logger.warn({ pod: p.pod, sysctl: key, err: error }, 'pod sysctl failed; retried');
        }
      }
    }
    // Settings no longer wanted go back to what the namespace had.
    for (const [netns, done] of this.applied) {
      for (const [key, set] of done) {
        if (keep.get(netns)?.has(key)) continue;
        try {
          netnsSysctl(set.pid, key, set.before);
          this.logger.info({ netns, sysctl: key, value: set.before }, 'pod sysctl restored');
        } catch {
          /* the namespace is gone with its pod */
        }
        done.delete(key);
      }
      if (done.size === 0) this.applied.delete(netns);
    }
    this.pending = pending;
    if (pending.length > 0) {
      this.timer = setTimeout(() => this.syncSysctls(), SYSCTL_RETRY_MS);
      this.timer.unref();
    }
  }
}

/**
 * Acceleration switched off: the sock_ops link goes (no socket is added or tuned any more) and
 * every pod loses its flags (no send is redirected any more). The sockets already in the
 * sockhash stay until they close, with the sk_msg program, so nothing in flight is lost.
 */
export function withdrawAcceleration(pinRoot: string, logger: Logger): void {
  const unlinked = detachCgroupPinned(join(pinRoot, 'links', SOCKOPS_LINK));
  const podsPin = join(pinRoot, 'sockmap_pods');
  let cleared = 0;
  if (existsSync(podsPin)) {
    const pods = openPinnedMap(podsPin, sockRedirectMaps.sockmap_pods);
    try {
      for (const [key, value] of pods.entries()) {
        if (value.flags === 0) continue;
        pods.update(key, { ...value, flags: 0 });
        cleared++;
      }
    } finally {
      pods.close();
    }
  }
  if (unlinked || cleared > 0) {
    logger.info({ unlinked, podsCleared: cleared }, 'socket acceleration withdrawn');
  }
}
