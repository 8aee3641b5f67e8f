/**
 * The lab's cgroups (v2): <cgroup2>/sluice/lab[-name]/<node>/<pod netns>, never the root cgroup.
 * Every path is checked to be inside the lab's cgroup before anything is written or removed.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroup2Root } from '../../bpf/environment.js';
import { LabError } from './errors.js';

export { cgroup2Root };

/** <cgroup2>/sluice: the parent of every sluice cgroup. */
export function sluiceCgroupDir(): string {
  return join(cgroup2Root(), 'sluice');
}

/** Throws unless `path` is `root` or inside it, and `root` is inside <cgroup2>/sluice/. */
export function checkInside(root: string, path: string): void {
  const sluice = `${sluiceCgroupDir()}/`;
  if (!root.startsWith(sluice) || root.length <= sluice.length || root.includes('..')) {
    throw new LabError(`refusing cgroup root ${root}: not inside ${sluice}`);
  }
  if ((path !== root && !path.startsWith(`${root}/`)) || path.includes('..')) {
    throw new LabError(`refusing cgroup ${path}: not inside the lab's ${root}`);
  }
}

export function createCgroup(root: string, path: string): void {
  checkInside(root, path);
  mkdirSync(path, { recursive: true });
}

/** Pids in the cgroup and all its descendants. */
export function cgroupPids(path: string): number[] {
  if (!existsSync(path)) return [];
  const pids: number[] = [];
  const walk = (dir: string): void => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line !== '') pids.push(Number(line));
      }
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(dir, entry.name));
      }
    } catch {
      /* removed meanwhile */
    }
  };
  walk(path);
  return pids;
}

/**
 * Kills every process in the cgroup subtree with SIGKILL (cgroup.kill where the kernel has it,
 * 5.14+, else one by one from cgroup.procs) and waits until the subtree is empty.
 */
export async function killCgroup(root: string, path: string, timeoutMs = 5000): Promise<number> {
  checkInside(root, path);
  if (!existsSync(path)) return 0;
  const own = readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1];
  if (own !== undefined && `${join(cgroup2Root(), own)}/`.startsWith(`${path}/`)) {
    throw new LabError(`this process runs inside ${path}: run it from outside the lab`);
  }
  const found = cgroupPids(path).length;
  const deadline = Date.now() + timeoutMs;
  while (cgroupPids(path).length > 0) {
    if (existsSync(join(path, 'cgroup.kill'))) writeFileSync(join(path, 'cgroup.kill'), '1');
    else {
      for (const pid of cgroupPids(path)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (Date.now() > deadline) {
      throw new LabError(`processes in ${path} did not exit: ${cgroupPids(path).join(' ')}`);
    }
    await sleep(10);
  }
  return found;
}

/** Removes the cgroup and its descendants (children first); they must hold no process. */
export async function removeCgroupTree(root: string, path: string): Promise<number> {
  checkInside(root, path);
  if (!existsSync(path)) return 0;
  let removed = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removed += await removeCgroupTree(root, join(path, entry.name));
  }
  // A cgroup whose last process just exited stays busy until the exit is complete; a killed
  // daemon reparented to a PID 1 that reaps slowly can take seconds.
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(path);
      return removed + 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return removed;
      if (code !== 'EBUSY' || attempt >= 1000) {
        throw new LabError(`cannot remove cgroup ${path}: ${code}`, { cause: error });
      }
      await sleep(10);
    }
  }
}

/** Removes <cgroup2>/sluice when nothing else (another lab, a test) uses it any more. */
export function removeSluiceDirIfEmpty(): void {
  try {
    rmdirSync(sluiceCgroupDir());
  } catch {
    /* absent, or still in use */
  }
}

/** The file a process writes its pid to, to move itself into the cgroup. */
export function procsFile(path: string): string {
  return join(path, 'cgroup.procs');
}
