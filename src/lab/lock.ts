/**
 * One lab command at a time: `lab apply` and `lab pod` read, change and write the lab's records,
 * so two of them at once would lose an update. A lock file holds the owner's PID; a lock whose
 * owner is gone (a crashed command) is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './topology/index.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withLabLock<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, 'lock');
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(path, 'utf8'));
      if (owner && alive(owner)) {
        throw new LabError(
          `another sluice lab command (pid ${owner}) is changing the lab; try again when it ends`,
        );
      }
      rmSync(path, { force: true }); // its owner died: take it over
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
