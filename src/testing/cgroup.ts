/**
 * Throwaway cgroups for tests under <cgroup2 mount>/sluice/, never the root cgroup; removed in a
 * finally once the processes the test put there are gone.
 */
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

let serial = 0;

/** The cgroup v2 mount point (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Root(): string {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    if (fsType === 'cgroup2' && mountPoint) return mountPoint;
  }
  throw new Error('no cgroup2 mount found in /proc/mounts');
}

export async function withTestCgroup<T>(fn: (path: string) => Promise<T> | T): Promise<T> {
  const parent = join(cgroup2Root(), 'sluice');
  const path = join(parent, `test-${process.pid}-${serial++}`);
  mkdirSync(path, { recursive: true });
  try {
    return await fn(path);
  } finally {
    rmdirSync(path);
    try {
      rmdirSync(parent); // only succeeds once no other test cgroup is left in it
    } catch {
      /* still in use by a concurrent test */
    }
  }
}
