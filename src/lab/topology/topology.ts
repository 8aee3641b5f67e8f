/**
 * The lab cluster's topology: a fabric bridge, node namespaces, pod namespaces, an external
 * client, their cgroups, and the processes that run in them. See naming.ts for the names and
 * links.ts for the wiring; everything is recorded in the state file (state-file.ts) before it is
 * created, so destroyLab (destroy.ts) removes all of it even after a crash.
 *
 *   const lab = await LabTopology.create({ stateDir });
 *   await lab.addNode(node0); await lab.addNode(node1);
 *   await lab.addPods(pods);
 *   await lab.execInPod('default/web-0', ['ping', '-c1', '198.18.17.5']);
 *   await lab.destroy();
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Addressing } from '../../model/addressing.js';
import { DEFAULT_ADDRESSING } from '../../model/addressing.js';
import type { Node, Pod } from '../../model/types.js';
import { createCgroup, cgroup2Root, killCgroup, procsFile, removeCgroupTree } from './cgroups.js';
import type { DestroyReport } from './destroy.js';
import { destroyLab } from './destroy.js';
import { LabError } from './errors.js';
import type { RunOptions, RunResult } from './exec.js';
import { ipBatch, mapLimit, run } from './exec.js';
import { cidrContains, cidrHost, parseCidr } from './ipv4.js';
import {
  externalLines,
  fabricLines,
  nodeLines,
  nodeSysctls,
  nodeUplinkLines,
  podHostLines,
  podLines,
  quietSysctls,
  routeLine,
} from './links.js';
import type { LabNames } from './naming.js';
import {
  BPFFS_ROOT,
  checkNodeName,
  externalNetns,
  fabricNetns,
  fabricPort,
  labNames,
  nodeNetns,
  podHostVeth,
  podNetns,
} from './naming.js';
import { addNetns, deleteNetns, inNetns, setSysctls } from './netns.js';
import { isRecordedProcessAlive, processStartTime, terminateProcesses } from './processes.js';
import type { LabState, NodeRecord, PodRecord, ProcessRecord } from './state-file.js';
import { logDir, readState, resolveStateDir, writeState } from './state-file.js';

export interface LabOptions {
  /** Where the state file and logs live. Default $SLUICE_LAB_DIR, else /run/sluice/lab. */
  stateDir?: string;
  /** Names a lab so several can coexist (tests); '' (default) is the lab `sluice lab` uses. */
  labName?: string;
  addressing?: Addressing;
}

/** Where a command runs: a pod, a node, or the external client. */
export type Target = { pod: string } | { node: string } | 'external';

export interface StartOptions {
  /** Appended to: the process's stdout and stderr. Default <stateDir>/logs/<owner>.log. */
  log?: string;
  /** Added to the lab's own environment. */
  env?: Record<string, string>;
  /** Recorded with the process (pod workloads: the container name). */
  container?: string;
}

/** Pods wired in parallel: each is one `ip -n POD -batch` process. */
const POD_CONCURRENCY = 8;

export class LabTopology {
  readonly stateDir: string;
  private state: LabState;

  private constructor(stateDir: string, state: LabState) {
    this.stateDir = stateDir;
    this.state = state;
  }

  /**
   * Creates the fabric (bridge + gateway address) and the external client namespace. Fails
   * when the state directory already records a lab: destroy that one first.
   */
  static async create(options: LabOptions = {}): Promise<LabTopology> {
    const stateDir = resolveStateDir(options.stateDir);
    if (readState(stateDir) !== null) {
      throw new LabError(`a lab is already recorded in ${stateDir}: remove it first (lab down)`);
    }
    const names = labNames(options.labName);
    const addressing = options.addressing ?? DEFAULT_ADDRESSING;
    const cgroupRoot = join(cgroup2Root(), 'sluice', names.dirName);
    const state: LabState = {
      version: 1,
      labName: names.labName,
      prefix: names.prefix,
      cgroupRoot,
      pinDir: join(BPFFS_ROOT, 'sluice', names.dirName),
      addressing,
      gateway: cidrHost(addressing.fabricCIDR, 1),
      externalIP: cidrHost(addressing.fabricCIDR, 2),
      netns: [fabricNetns(names), externalNetns(names)],
      cgroups: [cgroupRoot, join(cgroupRoot, 'external')],
      nodes: [],
      pods: {},
      processes: [],
      externalRoutes: [],
    };
    const lab = new LabTopology(stateDir, state);
    lab.save(); // recorded before anything exists
    const [fabric, external] = state.netns as [string, string];
    try {
      for (const cgroup of state.cgroups) createCgroup(cgroupRoot, cgroup);
      await addNetns([fabric, external]);
      await Promise.all([setSysctls(fabric, quietSysctls()), setSysctls(external, quietSysctls())]);
      await ipBatch(fabricLines(lab.onFabric(state.gateway), external), fabric);
      await ipBatch(externalLines(lab.onFabric(state.externalIP)), external);
    } catch (error) {
      await lab.destroy().catch(() => {});
      throw error;
    }
    return lab;
  }

  /** The lab recorded in the state directory (created by this process or another one). */
  static open(stateDir?: string): LabTopology {
    const dir = resolveStateDir(stateDir);
    const state = readState(dir);
    if (state === null) throw new LabError(`no lab recorded in ${dir}`);
    return new LabTopology(dir, state);
  }

  get names(): LabNames {
    return labNames(this.state.labName);
  }

  get addressing(): Addressing {
    return this.state.addressing;
  }

  /** The external client's address on the fabric. */
  get externalIP(): string {
    return this.state.externalIP;
  }

  get externalNetns(): string {
    return externalNetns(this.names);
  }

  get cgroupRoot(): string {
    return this.state.cgroupRoot;
  }

  /** Where the lab's BPF objects are pinned (removed by destroy). */
  get pinDir(): string {
    return this.state.pinDir;
  }

  nodes(): readonly NodeRecord[] {
    return this.state.nodes;
  }

  node(name: string): NodeRecord {
    const node = this.state.nodes.find((n) => n.name === name);
    if (node === undefined) throw new LabError(`no node '${name}' in the lab`);
    return node;
  }

  pods(): PodRecord[] {
    return Object.values(this.state.pods);
  }

  pod(key: string): PodRecord {
    const pod = this.state.pods[key];
    if (pod === undefined) throw new LabError(`no pod '${key}' in the lab`);
    return pod;
  }

  hasPod(key: string): boolean {
    return this.state.pods[key] !== undefined;
  }

  processes(): readonly ProcessRecord[] {
    return this.state.processes;
  }

  /**
   * Adds a node: its namespace on the fabric at node.ip, its cgroup, routes between its pod
   * CIDR and every other node's. `index` (default: the next one) names its fabric port and its
   * pods' namespaces. The first node also becomes the external client's route to the
   * load-balancer pool, as a cloud load balancer would deliver to some node.
   */
  async addNode(node: Node, index = this.state.nodes.length): Promise<NodeRecord> {
    checkNodeName(node.name);
    if (!cidrContains(this.addressing.fabricCIDR, node.ip)) {
      throw new LabError(
        `node ${node.name}: ip ${node.ip} is outside the fabric ${this.addressing.fabricCIDR}`,
      );
    }
    parseCidr(node.podCIDR);
    for (const other of this.state.nodes) {
      const clash =
        other.name === node.name
          ? 'name'
          : other.index === index
            ? 'index'
            : other.ip === node.ip
              ? 'ip'
              : other.podCIDR === node.podCIDR
                ? 'pod CIDR'
                : null;
      if (clash) throw new LabError(`node ${node.name}: same ${clash} as node ${other.name}`);
    }
    const names = this.names;
    const record: NodeRecord = {
      name: node.name,
      index,
      ip: node.ip,
      podCIDR: node.podCIDR,
      netns: nodeNetns(names, node.name),
      cgroup: join(this.state.cgroupRoot, node.name),
      fabricPort: fabricPort(index),
      nextPodSerial: 0,
    };
    const peers = [...this.state.nodes];
    this.state.nodes.push(record);
    this.state.netns.push(record.netns);
    this.state.cgroups.push(record.cgroup);
    this.save();

    createCgroup(this.state.cgroupRoot, record.cgroup);
    await addNetns([record.netns]);
    await ipBatch(nodeUplinkLines(record.fabricPort, record.netns), fabricNetns(names));
    await setSysctls(record.netns, nodeSysctls());
    const toPeers = peers.map((p) => ({ cidr: p.podCIDR, via: p.ip }));
    await ipBatch(nodeLines(this.onFabric(record.ip), this.state.gateway, toPeers), record.netns);
    const fromPeer = routeLine({ cidr: record.podCIDR, via: record.ip });
    await Promise.all(peers.map((p) => ipBatch([fromPeer], p.netns)));
    if (peers.length === 0)
      await this.addExternalRoute(this.addressing.loadBalancerPool, node.name);
    return record;
  }

  /**
   * Routes `cidr` from the external client via a node (default: the first), e.g. a Service's
   * externalIPs. External clients never get a route to the service CIDR: in a real cluster
   * ClusterIPs are not reachable from outside.
   */
  async addExternalRoute(cidr: string, viaNode?: string): Promise<void> {
    const via = viaNode === undefined ? this.state.nodes[0] : this.node(viaNode);
    if (via === undefined) throw new LabError('the lab has no node to route through');
    parseCidr(cidr);
    await ipBatch([routeLine({ cidr, via: via.ip })], this.externalNetns);
    this.state.externalRoutes = this.state.externalRoutes.filter((r) => r.cidr !== cidr);
    this.state.externalRoutes.push({ cidr, via: via.ip });
    this.save();
  }

  /**
   * Creates the pods' namespaces, veths, addresses, routes and cgroups, all pods of a call in a
   * few `ip -batch` runs. Virtual pods are skipped (an address, nothing to create). On failure
   * the pods of this call are removed again.
   */
  async addPods(pods: readonly Pod[]): Promise<PodRecord[]> {
    const names = this.names;
    const records: PodRecord[] = [];
    const ips = new Set(this.pods().map((p) => p.ip));
    for (const pod of pods) {
      if (pod.virtual) continue;
      const key = `${pod.namespace}/${pod.name}`;
      const node = this.node(pod.nodeName);
      if (this.state.pods[key] !== undefined || records.some((r) => r.key === key)) {
        throw new LabError(`pod ${key} already exists in the lab`);
      }
      if (!cidrContains(node.podCIDR, pod.ip)) {
        throw new LabError(
          `pod ${key}: ip ${pod.ip} is outside node ${node.name}'s ${node.podCIDR}`,
        );
      }
      if (ips.has(pod.ip)) throw new LabError(`pod ${key}: ip ${pod.ip} is already in use`);
      ips.add(pod.ip);
      const serial = node.nextPodSerial++;
      const netns = podNetns(names, node.index, serial);
      records.push({
        key,
        node: node.name,
        ip: pod.ip,
        netns,
        cgroup: join(node.cgroup, netns),
        hostVeth: podHostVeth(serial),
      });
    }
    if (records.length === 0) return [];
    for (const r of records) {
      this.state.pods[r.key] = r;
      this.state.netns.push(r.netns);
      this.state.cgroups.push(r.cgroup);
    }
    this.save();

    try {
      await addNetns(records.map((r) => r.netns));
      for (const r of records) createCgroup(this.state.cgroupRoot, r.cgroup);
      const byNode = new Map<string, PodRecord[]>();
      for (const r of records) byNode.set(r.node, [...(byNode.get(r.node) ?? []), r]);
      await Promise.all(
        [...byNode].map(([node, list]) => ipBatch(podHostLines(list), this.node(node).netns)),
      );
      await mapLimit(records, POD_CONCURRENCY, (r) => ipBatch(podLines(r.ip), r.netns));
    } catch (error) {
      for (const r of records) await this.removePod(r.key).catch(() => {});
      throw error;
    }
    return records;
  }

  async addPod(pod: Pod): Promise<PodRecord | null> {
    const [record] = await this.addPods([pod]);
    return record ?? null;
  }

  /** Ends the pod's processes, deletes its namespace (and so its veth and route), its cgroup. */
  async removePod(key: string): Promise<void> {
    const pod = this.pod(key);
    await this.stopProcesses(key);
    await killCgroup(this.state.cgroupRoot, pod.cgroup);
    await deleteNetns([pod.netns]);
    await removeCgroupTree(this.state.cgroupRoot, pod.cgroup);
    delete this.state.pods[key];
    this.state.netns = this.state.netns.filter((n) => n !== pod.netns);
    this.state.cgroups = this.state.cgroups.filter((c) => c !== pod.cgroup);
    this.save();
  }

  /** Network namespace and cgroup of a target. */
  where(target: Target): { netns: string; cgroup: string } {
    if (target === 'external') {
      return { netns: this.externalNetns, cgroup: join(this.state.cgroupRoot, 'external') };
    }
    if ('pod' in target) return this.pod(target.pod);
    return this.node(target.node);
  }

  /**
   * The argv that runs `argv` inside the target's network namespace AND cgroup: a shell moves
   * itself into the cgroup, then execs `ip netns exec` which execs the command (one pid
   * throughout), so every process of a pod is in the pod's cgroup from its first instruction.
   * (The cgroup comes first: `ip netns exec` remounts /sys, hiding the cgroup2 mount.)
   */
  command(target: Target, argv: readonly string[]): string[] {
    const { netns, cgroup } = this.where(target);
    return ['sh', '-c', 'echo $$ > "$0" && exec "$@"', procsFile(cgroup), ...inNetns(netns, argv)];
  }

  /** Runs a command in the target and collects its output (throws on non-zero exit). */
  exec(target: Target, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run(this.command(target, argv), options);
  }

  execInPod(key: string, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return this.exec({ pod: key }, argv, options);
  }

  execInNode(name: string, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return this.exec({ node: name }, argv, options);
  }

  execExternal(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return this.exec('external', argv, options);
  }

  /**
   * Starts a long-running process in the target, detached (own session, survives this
   * process), stdout and stderr appended to a log file, and records it (pid + start time).
   */
  startProcess(target: Target, argv: readonly string[], options: StartOptions = {}): ProcessRecord {
    const owner = ownerOf(target);
    const log = options.log ?? join(logDir(this.stateDir), `${owner.replace(/\//g, '_')}.log`);
    mkdirSync(logDir(this.stateDir), { recursive: true });
    const fd = openSync(log, 'a');
    const [file, ...args] = this.command(target, argv);
    let pid: number | undefined;
    try {
      const child = spawn(file as string, args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...options.env },
      });
      child.on('error', () => {}); // reported below through the missing pid
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(fd);
    }
    if (pid === undefined) throw new LabError(`cannot start ${argv.join(' ')} in ${owner}`);
    const record: ProcessRecord = {
      pid,
      startTime: processStartTime(pid) ?? '',
      owner,
      argv: [...argv],
      log,
      ...(options.container === undefined ? {} : { container: options.container }),
    };
    this.state.processes.push(record);
    this.save();
    return record;
  }

  /** The recorded processes of an owner (pod key, `node/<name>`, `external`) still running. */
  liveProcesses(owner: string): ProcessRecord[] {
    return this.state.processes.filter(
      (p) => p.owner === owner && isRecordedProcessAlive(p.pid, p.startTime),
    );
  }

  /** SIGTERM, then SIGKILL after `graceMs`, the recorded processes of an owner; forgets them. */
  async stopProcesses(owner: string, graceMs = 2000): Promise<number> {
    const mine = this.state.processes.filter((p) => p.owner === owner);
    const stopped = await terminateProcesses(mine, graceMs);
    this.state.processes = this.state.processes.filter((p) => p.owner !== owner);
    this.save();
    return stopped;
  }

  /** Removes the whole lab (destroyLab on this lab's state directory). */
  destroy(): Promise<DestroyReport> {
    return destroyLab({ stateDir: this.stateDir, labName: this.state.labName });
  }

  private onFabric(ip: string): string {
    return `${ip}/${parseCidr(this.addressing.fabricCIDR).prefix}`;
  }

  private save(): void {
    writeState(this.stateDir, this.state);
  }
}

function ownerOf(target: Target): string {
  if (target === 'external') return 'external';
  return 'pod' in target ? target.pod : `node/${target.node}`;
}
