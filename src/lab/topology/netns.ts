/** Network namespaces through `ip netns` (named, under /run/netns). */
import { ipBatch, run } from './exec.js';

/** Names of the network namespaces `ip netns list` shows. */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

export async function addNetns(names: readonly string[]): Promise<void> {
  await ipBatch(names.map((name) => `netns add ${name}`));
}

/** Deletes the namespaces that exist among `names`; the others are ignored. */
export async function deleteNetns(names: readonly string[]): Promise<string[]> {
  const existing = new Set(await listNetns());
  const doomed = names.filter((name) => existing.has(name));
  await ipBatch(doomed.map((name) => `netns delete ${name}`));
  return doomed;
}

/** Pids of the processes whose network namespace is `name`. */
export async function netnsPids(name: string): Promise<number[]> {
  const { stdout, code } = await run(['ip', 'netns', 'pids', name], { allowFailure: true });
  if (code !== 0) return [];
  return stdout
    .split('\n')
    .filter((line) => /^\d+$/.test(line.trim()))
    .map(Number);
}

/** The argv that runs `argv` inside the namespace. */
export function inNetns(name: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', name, ...argv];
}

/** Sets sysctls inside the namespace (`ip netns exec` remounts /proc/sys/net for it). */
export async function setSysctls(
  name: string,
  settings: Record<string, string | number>,
): Promise<void> {
  const pairs = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
  if (pairs.length === 0) return;
  await run(inNetns(name, ['sysctl', '-q', '-w', ...pairs]));
}
