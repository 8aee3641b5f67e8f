/**
 * Removing a lab, also after a crash or kill -9: everything in the state file, then a sweep of
 * whatever carries the lab's names but is not recorded. Idempotent: with no lab it does nothing.
 *
 * Order: recorded processes (SIGTERM, then SIGKILL; pid + start time checked), processes left
 * in the lab's cgroups (cgroup.kill) and in its namespaces, BPF pins, namespaces (which takes
 * their interfaces, routes and attached programs with them), cgroups, the state file.
 */
import { existsSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cgroup2Root, killCgroup, removeCgroupTree, removeSluiceDirIfEmpty } from './cgroups.js';
import { LabError } from './errors.js';
import { BPFFS_ROOT, isLabNetns, labNames } from './naming.js';
import { deleteNetns, listNetns, netnsPids } from './netns.js';
import { refsOf, terminateProcesses } from './processes.js';
import { readState, removeState, resolveStateDir } from './state-file.js';

export interface DestroyOptions {
  /** Default $SLUICE_LAB_DIR, else /run/sluice/lab. */
  stateDir?: string;
  /** Used when the state file is gone: which lab's names to sweep. Default ''. */
  labName?: string;
  /** How long processes get between SIGTERM and SIGKILL. Default 2000 ms. */
  graceMs?: number;
}

export interface DestroyReport {
  /** Whether a state file was found. */
  recorded: boolean;
  /** Processes that were still running and were ended. */
  processes: number;
  netns: string[];
  cgroups: number;
  pins: boolean;
}

export async function destroyLab(options: DestroyOptions = {}): Promise<DestroyReport> {
  const stateDir = resolveStateDir(options.stateDir);
  const state = readState(stateDir);
  const names = labNames(state?.labName ?? options.labName ?? '');
  const cgroupRoot = state?.cgroupRoot ?? join(cgroup2Root(), 'sluice', names.dirName);
  const pinDir = state?.pinDir ?? join(BPFFS_ROOT, 'sluice', names.dirName);
  if (!pinDir.startsWith(`${BPFFS_ROOT}/sluice/`) || pinDir.includes('..')) {
    throw new LabError(`refusing to remove pins at ${pinDir}: not inside ${BPFFS_ROOT}/sluice/`);
  }
  // Namespaces: the recorded ones (only names of this lab) and any unrecorded leftover.
  const existing = await listNetns();
  const recorded = (state?.netns ?? []).filter((n) => isLabNetns(names, n));
  const netns = [...new Set([...recorded, ...existing.filter((n) => isLabNetns(names, n))])];

  let processes = await terminateProcesses(state?.processes ?? [], options.graceMs ?? 2000);
  processes += await killCgroup(cgroupRoot, cgroupRoot);
  // Processes in the lab's namespaces but outside its cgroups (e.g. a plain `ip netns exec`).
  const strays = refsOf((await Promise.all(netns.map((n) => netnsPids(n)))).flat());
  processes += await terminateProcesses(strays, options.graceMs ?? 2000);

  const pins = existsSync(pinDir);
  if (pins) rmSync(pinDir, { recursive: true, force: true });
  // The shared parent goes too once no lab or agent pins anything in it.
  try {
    rmdirSync(dirname(pinDir));
  } catch {
    /* not empty (another lab, a standalone agent) or already gone */
  }

  const deleted = await deleteNetns(netns);
  const cgroups = await removeCgroupTree(cgroupRoot, cgroupRoot);
  removeSluiceDirIfEmpty();
  removeState(stateDir);
  tryRmdir(stateDir);
  return { recorded: state !== null, processes, netns: deleted, cgroups, pins };
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    /* absent or not empty */
  }
}
