/**
 * Throwaway cgroups for tests under <cgroup2 mount>/sluice/, never the root cgroup; removed in a
 * finally once the processes the test put there are gone.
 */
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Root } from '../bpf/environment.js';

let serial = 0;

export { cgroup2Root };

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
