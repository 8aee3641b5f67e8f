/** Where each node's datapath is pinned, for the commands that read it back. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PIN_BASE } from '../agent/config.js';
import { Lab } from '../lab/lab.js';

/**
 * Where each node's datapath is pinned: --pin-root for one node; else the running lab's pin
 * directory (<lab pins>/<node>); else the agent's default /sys/fs/bpf/sluice/<node>.
 */
export function pinRoots(
  node: string | undefined,
  pinRoot: string | undefined,
): [string, string][] {
  if (pinRoot !== undefined) return [[node ?? pinRoot, pinRoot]];
  let lab: Lab | undefined;
  try {
    lab = Lab.open();
  } catch {
    lab = undefined; // no lab: a real node
  }
  if (lab) {
    const nodes = lab.topology.nodes().map((n) => n.name);
    const chosen = node === undefined ? nodes : nodes.filter((n) => n === node);
    if (chosen.length > 0) return chosen.map((n) => [n, join(lab.topology.pinDir, n)]);
  }
  if (node !== undefined) return [[node, join(PIN_BASE, node)]];
  const found = existsSync(PIN_BASE)
    ? readdirSync(PIN_BASE).filter((n) => existsSync(join(PIN_BASE, n, 'lb4_services')))
    : [];
  return found.map((n) => [n, join(PIN_BASE, n)]);
}
