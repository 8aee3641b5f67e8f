/**
 * Throwaway network namespaces for tests: named sl-test-*, removed in a finally even when the
 * test fails. Nothing here touches the root namespace.
 */
import { execFileSync } from 'node:child_process';

let serial = 0;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: 'pipe' }).toString();
}

/** Runs a command inside a namespace and returns its stdout. */
export function inNetns(ns: string, command: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], {
    stdio: 'pipe',
    ...(input === undefined ? {} : { input }),
  }).toString();
}

/** Creates a namespace holding a veth pair (a <-> b, both up), runs fn, always deletes it. */
export async function withVethNetns<T>(fn: (ns: string, a: string, b: string) => Promise<T> | T): Promise<T> {
  const ns = `sl-test-${process.pid}-${serial++}`;
  ip('netns', 'add', ns);
  try {
    inNetns(ns, 'ip', ['link', 'set', 'lo', 'up']);
    inNetns(ns, 'ip', ['link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b']);
    inNetns(ns, 'ip', ['link', 'set', 'veth-a', 'up']);
    inNetns(ns, 'ip', ['link', 'set', 'veth-b', 'up']);
    return await fn(ns, 'veth-a', 'veth-b');
  } finally {
    ip('netns', 'delete', ns);
  }
}
