/**
 * Loading, adopting and attaching the node's datapath objects. Maps and cgroup links are
 * pinned under the pin root, TC filters belong to their interfaces: all of it outlives the
 * agent, and a restarted agent adopts it (libbpf reuses pinned maps whose definition matches;
 * links and filters running the same code are left as they are) instead of starting over, so
 * traffic never sees an empty or detached datapath.
 *
 * A start that fails removes what it created (pins that were not there before, links it
 * attached) and leaves alone what it adopted.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  attachCgroupPinned,
  attachTcPersistent,
  detachCgroupPinned,
  ifindexOf,
} from '../bpf/attach.js';
import type { PersistentOutcome } from '../bpf/attach.js';
import { mountPoints } from '../bpf/environment.js';
import type { BpfMap } from '../bpf/map.js';
import type { BpfObject, BpfProgram, MapSpec } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { lbTcRodata, lbTcSpec } from '../datapath/lb-tc.js';
import type { InterfaceMode } from '../datapath/lb-xdp.js';
import {
  attachXdpPersistent,
  detachStaleXdp,
  detachXdp,
  lbXdpRodataOf,
  lbXdpSpec,
} from '../datapath/lb-xdp.js';
import { maglevRodata } from '../datapath/maglev.js';
import { SOCK_LB_PROGRAMS, sockLbSpec } from '../datapath/sock-lb.js';
import { sockRedirectSpec } from '../datapath/sock-redirect.js';
import type { LbMapHandles } from './apply.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';

export interface AttachmentReport {
  kind: 'cgroup' | 'tc' | 'xdp';
  program: string;
  target: string;
  outcome: PersistentOutcome;
}

export interface NodeDatapath {
  maps: LbMapHandles;
  attachments: AttachmentReport[];
  /** lb_maglev (service_id -> Maglev table), when the TC object is loaded (src/agent/maglev.ts). */
  maglev?: BpfMap<number, number>;
  /** Pins found under the pin root before this start: non-empty means adopted. */
  adoptedPins: string[];
  /**
   * Attaches lb_tc_ingress to the pod interfaces (perPacketLB.podInterfaces) that appeared or
   * were recreated since the last call, forgets those that are gone. Absent: no pod interfaces.
   */
  syncPodInterfaces?: () => PodInterfaceSync;
  /** Which program runs the per-packet LB on each uplink (xdp-native, xdp-generic, tc). */
  interfaceModes: { ifname: string; mode: InterfaceMode }[];
  /** Things the agent should log once as warnings (an XDP attach that fell back to TC). */
  warnings: { msg: string; fields: Record<string, unknown> }[];
  /** Closes this process's fds; pins and attachments stay. */
  close(): void;
}

export interface PodInterfaceSync {
  /** Every pod interface that has the program, this call's new ones included. */
  attachments: AttachmentReport[];
  added: AttachmentReport[];
  gone: string[];
  /** Interfaces that matched but could not be attached (e.g. removed meanwhile); retried. */
  failed: { ifname: string; error: string }[];
}

/** Map names the config may size: every map of every object the agent loads. */
export function knownMapNames(): string[] {
  return [
    ...new Set([
      ...Object.keys(sockLbSpec.maps),
      ...Object.keys(lbTcSpec.maps),
      ...Object.keys(sockRedirectSpec.maps),
    ]),
  ].sort();
}

/**
 * Checks what can be checked before anything is touched: bpffs under the pin root, the cgroup
 * (not a hierarchy root), the interfaces, and that TC is not aimed at the machine's own
 * network namespace.
 */
export function preflight(config: AgentConfig): void {
  const problems: string[] = [];
  if (!config.socketLB.enabled && !config.perPacketLB.enabled) {
    problems.push('socketLB.enabled and perPacketLB.enabled are both false: nothing to run');
  }
  if (!mountPoints('bpf').some((m) => config.pinRoot === m || config.pinRoot.startsWith(`${m}/`))) {
    problems.push(`pinRoot: ${config.pinRoot} is not on a bpf file system`);
  }
  const unknown = Object.keys(config.maps.maxEntries).filter((n) => !knownMapNames().includes(n));
  if (unknown.length > 0) {
    problems.push(
      `maps.maxEntries: unknown map ${unknown.join(', ')} (known: ${knownMapNames().join(', ')})`,
    );
  }
  if (config.socketLB.enabled && config.socketLB.cgroupPath !== undefined) {
    const path = config.socketLB.cgroupPath;
    if (!existsSync(join(path, 'cgroup.procs'))) {
      problems.push(`socketLB.cgroupPath: ${path} is not a cgroup v2 directory`);
    } else if (mountPoints('cgroup2').includes(realpathSync(path))) {
      problems.push(`socketLB.cgroupPath: ${path} is the root cgroup; use the node's own cgroup`);
    }
  }
  if (config.perPacketLB.enabled) {
    if (isInitialNetns() && !config.perPacketLB.allowInitialNetns) {
      problems.push(
        "perPacketLB: the agent runs in the initial network namespace; refusing to attach TC to the machine's interfaces (set perPacketLB.allowInitialNetns on a real node)",
      );
    }
    for (const ifname of config.perPacketLB.interfaces) {
      try {
        ifindexOf(ifname);
      } catch {
        problems.push(`perPacketLB.interfaces: no interface ${ifname} in this network namespace`);
      }
    }
  }
  if (problems.length > 0) throw new AgentError('AGENT_CONFIG', problems.join('\n'));
}

/** Whether this process shares the network namespace of pid 1 (the machine's own). */
export function isInitialNetns(): boolean {
  try {
    return readlinkSync('/proc/self/ns/net') === readlinkSync('/proc/1/ns/net');
  } catch {
    return false; // cannot tell (no access to pid 1): not the machine's, as far as we know
  }
}

function sizesFor(spec: Record<string, MapSpec>, config: AgentConfig): Record<string, number> {
  return Object.fromEntries(
    Object.entries(config.maps.maxEntries).filter(([name]) => Object.hasOwn(spec, name)),
  );
}

/** The interfaces of this process's network namespace (/proc/self/net is per netns). */
export function netnsInterfaces(): string[] {
  return readFileSync('/proc/self/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]?.trim() ?? '')
    .filter((name) => name !== '');
}

/** A predicate for interface names matching any of the names or globs (`*`, `?`). */
export function interfaceMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .split('')
          .map((ch) =>
            ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.\\^$+()[\]{}|-]/g, '\\$&'),
          )
          .join('')}$`,
      ),
  );
  return (name) => res.some((re) => re.test(name));
}

/**
 * Keeps lb_tc_ingress on every pod interface matching `patterns` (never the uplinks, which
 * have their own filters). Nothing is detached: a pod's filter goes with its veth.
 */
function podInterfaceSyncer(
  prog: BpfProgram,
  patterns: readonly string[],
  uplinks: readonly string[],
): () => PodInterfaceSync {
  const matches = interfaceMatcher(patterns);
  const attached = new Map<string, { ifindex: number; report: AttachmentReport }>();
  return () => {
    const names = netnsInterfaces().filter((n) => matches(n) && !uplinks.includes(n));
    const added: AttachmentReport[] = [];
    const failed: PodInterfaceSync['failed'] = [];
    const gone = [...attached.keys()].filter((n) => !names.includes(n));
    for (const name of gone) attached.delete(name);
    for (const ifname of names) {
      try {
        const ifindex = ifindexOf(ifname);
        if (attached.get(ifname)?.ifindex === ifindex) continue;
        const outcome = attachTcPersistent(prog, ifname, 'ingress', TC_FILTER);
        const report: AttachmentReport = {
          kind: 'tc',
          program: prog.name,
          target: `${ifname} ingress`,
          outcome,
        };
        attached.set(ifname, { ifindex, report });
        added.push(report);
      } catch (error) {
        attached.delete(ifname);
        failed.push({ ifname, error: (error as Error).message });
      }
    }
    return { attachments: [...attached.values()].map((a) => a.report), added, gone, failed };
  };
}

/** Where TC programs go on each configured interface (lb_tc.c). */
const TC_HOOKS = [
  { program: 'lb_tc_ingress', direction: 'ingress' },
  { program: 'lb_tc_egress', direction: 'egress' },
] as const;
const TC_FILTER = { handle: 1, priority: 1 };

/**
 * Loads (or adopts) every enabled object under the pin root and attaches it. `nodeIP` is the
 * node's address (the TC object's SNAT source and NodePort address, fixed at load).
 */
export function openDatapath(config: AgentConfig, nodeIP: string): NodeDatapath {
  const pinRoot = config.pinRoot;
  const existed = existsSync(pinRoot);
  const before = existed ? readdirSync(pinRoot) : [];
  const linksDir = join(pinRoot, 'links');
  const beforeLinks = existsSync(linksDir) ? readdirSync(linksDir) : [];
  const objects: BpfObject<Record<string, MapSpec>>[] = [];
  const attachments: AttachmentReport[] = [];
  const interfaceModes: NodeDatapath['interfaceModes'] = [];
  const warnings: NodeDatapath['warnings'] = [];
  // Counters pinned by an older sluice with fewer slots are replaced (MapSpec.counters).
  const onPinReplaced = (map: string, change: string): void => {
    warnings.push({
      msg: `${map}: the pinned map had another shape (${change}); replaced, its counts start from 0`,
      fields: { map, pinRoot },
    });
  };
  try {
    mkdirSync(linksDir, { recursive: true });
    let maps: LbMapHandles | undefined;
    let syncPodInterfaces: (() => PodInterfaceSync) | undefined;
    let maglev: BpfMap<number, number> | undefined;
    if (config.socketLB.enabled) {
      const cgroupPath = config.socketLB.cgroupPath as string; // preflight: required when enabled
      const sockLb = loadObject(sockLbSpec, {
        pinRoot,
        onPinReplaced,
        maxEntries: sizesFor(sockLbSpec.maps, config),
      });
      objects.push(sockLb);
      maps = sockLb.maps;
      for (const name of SOCK_LB_PROGRAMS) {
        const outcome = attachCgroupPinned(
          sockLb.program(name),
          cgroupPath,
          join(linksDir, `cgroup_${name}`),
        );
        attachments.push({ kind: 'cgroup', program: name, target: cgroupPath, outcome });
      }
    }
    if (config.perPacketLB.enabled) {
      const p = config.perPacketLB;
      const rodata = {
        ...lbTcRodata({
          nodeIPv4: nodeIP,
          snatPorts: p.snatPorts,
          ctTimeouts: config.conntrack.timeouts,
          ...(p.clusterCIDR !== undefined ? { clusterCidr: p.clusterCIDR } : {}),
          lbMode: config.lb.mode,
        }),
        ...maglevRodata({
          enabled: config.externalBackendSelection === 'maglev',
          tableSize: config.maglev.tableSize,
        }),
      };
      const lbTc = loadObject(lbTcSpec, {
        pinRoot,
        onPinReplaced,
        maxEntries: sizesFor(lbTcSpec.maps, config),
        rodata,
      });
      objects.push(lbTc);
      maps ??= lbTc.maps;
      maglev = lbTc.maps.lb_maglev;
      for (const ifname of p.interfaces) {
        for (const hook of TC_HOOKS) {
          const prog = lbTc.program(hook.program);
          const outcome = attachTcPersistent(prog, ifname, hook.direction, TC_FILTER);
          const target = `${ifname} ${hook.direction}`;
          attachments.push({ kind: 'tc', program: hook.program, target, outcome });
        }
      }
      for (const ifname of p.interfaces) interfaceModes.push({ ifname, mode: 'tc' });
      const xdpOff = p.interfaces.filter(
        (i) => !config.xdp.enabled || !config.xdp.interfaces.includes(i),
      );
      for (const ifname of detachStaleXdp(xdpOff)) {
        warnings.push({
          msg: `lb_xdp detached from ${ifname}: the config no longer asks for XDP there`,
          fields: { ifname },
        });
      }
      if (config.xdp.enabled) {
        const lbXdp = loadObject(lbXdpSpec, {
          pinRoot,
          onPinReplaced,
          maxEntries: sizesFor(lbXdpSpec.maps, config),
          // The TC object's settings, all of them: the two programs share every flow.
          rodata: lbXdpRodataOf(rodata),
        });
        objects.push(lbXdp);
        const mode = config.xdp.mode;
        for (const ifname of config.xdp.interfaces) {
          try {
            const outcome = attachXdpPersistent(lbXdp.program('lb_xdp'), ifname, mode);
            attachments.push({
              kind: 'xdp',
              program: 'lb_xdp',
              target: `${ifname} ${mode}`,
              outcome,
            });
            const entry = interfaceModes.find((m) => m.ifname === ifname);
            if (entry) entry.mode = mode === 'native' ? 'xdp-native' : 'xdp-generic';
          } catch (error) {
            // TC alone still balances this interface: slower, never wrong.
            warnings.push({
              msg: `XDP cannot attach to ${ifname} in ${mode} mode (${(error as Error).message}); ${ifname} falls back to TC`,
              fields: { ifname, xdpMode: mode, fallback: 'tc' },
            });
          }
        }
      }
      if (p.podInterfaces.length > 0) {
        syncPodInterfaces = podInterfaceSyncer(
          lbTc.program('lb_tc_ingress'),
          p.podInterfaces,
          p.interfaces,
        );
      }
    }
    if (!maps) throw new AgentError('AGENT_CONFIG', 'neither socketLB nor perPacketLB is enabled');
    return {
      maps,
      attachments,
      adoptedPins: before,
      interfaceModes,
      warnings,
      ...(syncPodInterfaces ? { syncPodInterfaces } : {}),
      ...(maglev ? { maglev } : {}),
      close: () => {
        for (const o of objects) o.close();
      },
    };
  } catch (error) {
    for (const o of objects) o.close();
    // Undo what this start made: links it pinned, maps it pinned, the directory if it made it.
    for (const a of attachments) {
      if (a.outcome !== 'attached') continue;
      if (a.kind === 'cgroup') detachCgroupPinned(join(linksDir, `cgroup_${a.program}`));
      if (a.kind === 'xdp') {
        const [ifname = '', mode] = a.target.split(' ');
        try {
          detachXdp(ifname, mode === 'generic' ? 'generic' : 'native');
        } catch {
          // the interface is gone: nothing left attached to it
        }
      }
    }
    if (existsSync(linksDir)) {
      for (const name of readdirSync(linksDir)) {
        if (!beforeLinks.includes(name)) rmSync(join(linksDir, name), { force: true });
      }
      if (!before.includes('links') && readdirSync(linksDir).length === 0)
        rmSync(linksDir, { recursive: true });
    }
    if (existsSync(pinRoot)) {
      for (const name of readdirSync(pinRoot)) {
        if (!before.includes(name)) rmSync(join(pinRoot, name), { recursive: true, force: true });
      }
      if (!existed && readdirSync(pinRoot).length === 0) rmSync(pinRoot, { recursive: true });
    }
    if (error instanceof AgentError) throw error;
    throw new AgentError(
      'AGENT_DATAPATH',
      `starting the datapath under ${pinRoot}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
