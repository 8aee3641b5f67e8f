/**
 * The lab's state file: every namespace, cgroup and process the lab makes, recorded BEFORE the
 * thing is created (processes: right after spawn, and they also sit in a lab cgroup), so
 * `destroyLab` can remove all of it after a crash or kill -9. Written atomically (temporary file
 * + rename): a reader sees the old or the new file, never half of one.
 *
 * One process at a time changes a lab; the file is the hand-over between them (`lab up`, then
 * `lab apply` or `lab down` in later processes).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Addressing } from '../../model/addressing.js';
import { LabError } from './errors.js';

export const STATE_DIR_ENV = 'SLUICE_LAB_DIR';
export const DEFAULT_STATE_DIR = '/run/sluice/lab';
export const STATE_FILE = 'state.json';

/** The state directory: the argument, else $SLUICE_LAB_DIR, else /run/sluice/lab. */
export function resolveStateDir(dir?: string): string {
  return dir ?? process.env[STATE_DIR_ENV] ?? DEFAULT_STATE_DIR;
}

export interface NodeRecord {
  name: string;
  index: number;
  ip: string;
  podCIDR: string;
  netns: string;
  cgroup: string;
  /** The node's port on the fabric bridge. */
  fabricPort: string;
  /** Serial of the next pod on this node (pod netns and veth names); never reused. */
  nextPodSerial: number;
}

export interface PodRecord {
  /** namespace/name */
  key: string;
  node: string;
  ip: string;
  netns: string;
  cgroup: string;
  /** The node's end of the pod's veth pair (the pod's end is eth0). */
  hostVeth: string;
}

export interface ProcessRecord {
  pid: number;
  /** Field 22 of /proc/PID/stat: with the pid, identifies the process (pids get recycled). */
  startTime: string;
  /** What runs it: a pod key, `node/<name>` or `external`. */
  owner: string;
  /** The container, for pod workloads. */
  container?: string;
  argv: string[];
  log?: string;
}

export interface LabState {
  version: 1;
  labName: string;
  /** Prefix of every network namespace of this lab. */
  prefix: string;
  /** <cgroup2>/sluice/lab[-name]: every cgroup of the lab is inside it. */
  cgroupRoot: string;
  /** /sys/fs/bpf/sluice/lab[-name]: removed by destroyLab. */
  pinDir: string;
  addressing: Addressing;
  /** The fabric bridge's address: the nodes' default gateway (it forwards nothing). */
  gateway: string;
  externalIP: string;
  /** Every network namespace created or about to be, in creation order. */
  netns: string[];
  /** Every cgroup created or about to be, parents before children. */
  cgroups: string[];
  nodes: NodeRecord[];
  pods: Record<string, PodRecord>;
  processes: ProcessRecord[];
  /** Destinations the external namespace routes via a node: `<cidr> via <node ip>`. */
  externalRoutes: { cidr: string; via: string }[];
}

export function statePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

export function logDir(stateDir: string): string {
  return join(stateDir, 'logs');
}

/** The recorded state, or null when there is no lab in this directory. */
export function readState(stateDir: string): LabState | null {
  let text: string;
  try {
    text = readFileSync(statePath(stateDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (error) {
    throw new LabError(`${statePath(stateDir)} is not valid JSON`, { cause: error });
  }
  if (typeof state !== 'object' || state === null || (state as LabState).version !== 1) {
    throw new LabError(`${statePath(stateDir)}: unknown state file version`);
  }
  return state as LabState;
}

export function writeState(stateDir: string, state: LabState): void {
  mkdirSync(stateDir, { recursive: true });
  const path = statePath(stateDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, path);
}

export function removeState(stateDir: string): void {
  rmSync(statePath(stateDir), { force: true });
  rmSync(logDir(stateDir), { recursive: true, force: true });
}
