/**
 * Processes the lab started, identified by pid AND start time (field 22 of /proc/PID/stat), so a
 * recycled pid is never signalled. Only recorded processes, and processes inside the lab's own
 * cgroups and namespaces, are ever ended.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The process's start time in clock ticks since boot, or null when it does not exist. */
export function processStartTime(pid: number): string | null {
  const fields = statFields(pid);
  return fields?.[19] ?? null; // field 22 counted from the first field after "(comm)"
}

/** Fields of /proc/PID/stat after the command name (which may contain spaces and parens). */
function statFields(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

/** Alive (not a zombie) and the same process that was recorded. */
export function isRecordedProcessAlive(pid: number, startTime: string): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== 'Z' && fields[19] === startTime;
}

export interface ProcessRef {
  pid: number;
  startTime: string;
}

function signal(ref: ProcessRef, sig: NodeJS.Signals): void {
  if (!isRecordedProcessAlive(ref.pid, ref.startTime)) return;
  try {
    process.kill(ref.pid, sig);
  } catch {
    /* exited in between */
  }
}

/**
 * SIGTERM, then SIGKILL for those still alive after `graceMs`; resolves once all are gone.
 * Returns how many were alive at the start.
 */
export async function terminateProcesses(
  refs: readonly ProcessRef[],
  graceMs = 2000,
): Promise<number> {
  const alive = refs.filter((r) => isRecordedProcessAlive(r.pid, r.startTime));
  for (const r of alive) signal(r, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let left = alive;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(10);
    left = left.filter((r) => isRecordedProcessAlive(r.pid, r.startTime));
  }
  for (const r of left) signal(r, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (left.length > 0 && Date.now() < killDeadline) {
    await sleep(10);
    left = left.filter((r) => isRecordedProcessAlive(r.pid, r.startTime));
  }
  return alive.length;
}

/** References for pids found by looking (cgroup.procs, `ip netns pids`), taken now. */
export function refsOf(pids: readonly number[]): ProcessRef[] {
  const refs: ProcessRef[] = [];
  for (const pid of pids) {
    const startTime = processStartTime(pid);
    if (startTime !== null && pid !== process.pid) refs.push({ pid, startTime });
  }
  return refs;
}
