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
export function inNetns(ns: string, command: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], { stdio: 'pipe' }).toString();
}

export interface VethPair {
  /** Namespace holding `dev` (198.18.0.1/30), where programs get attached. */
  ns: string;
  dev: string;
  addr: string;
  /** Namespace holding the peer (198.18.0.2/30), which sends traffic at `dev`. */
  peerNs: string;
  peerDev: string;
  peerAddr: string;
}

/**
 * Two namespaces joined by a veth pair, both ends up and addressed from the benchmarking range;
 * runs fn, then always deletes both namespaces (which removes the veth and anything attached).
 */
export async function withVethPair<T>(fn: (pair: VethPair) => Promise<T> | T): Promise<T> {
  const id = `${process.pid}-${serial++}`;
  const pair: VethPair = {
    ns: `sl-test-${id}-a`,
    dev: 'sl-a',
    addr: '198.18.0.1',
    peerNs: `sl-test-${id}-b`,
    peerDev: 'sl-b',
    peerAddr: '198.18.0.2',
  };
  const made: string[] = [];
  try {
    for (const ns of [pair.ns, pair.peerNs]) {
      ip('netns', 'add', ns);
      made.push(ns);
      inNetns(ns, 'ip', ['link', 'set', 'lo', 'up']);
    }
    inNetns(pair.ns, 'ip', [
      'link',
      'add',
      pair.dev,
      'type',
      'veth',
      'peer',
      'name',
      pair.peerDev,
      'netns',
      pair.peerNs,
    ]);
    for (const [ns, dev, addr] of [
      [pair.ns, pair.dev, pair.addr],
      [pair.peerNs, pair.peerDev, pair.peerAddr],
    ] as const) {
      inNetns(ns, 'ip', ['addr', 'add', `${addr}/30`, 'dev', dev]);
      inNetns(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return await fn(pair);
  } finally {
    for (const ns of made) ip('netns', 'delete', ns);
  }
}
