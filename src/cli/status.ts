/**
 * `sluice status`: which mode each interface of a node runs (xdp-native, xdp-generic, tc).
 * Command definition only; the work is in src/datapath/lb-xdp-status.ts.
 */
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatInterfaceStatus, interfaceStatus } from '../datapath/lb-xdp-status.js';
import { Lab } from '../lab/lab.js';

/** The nodes to show: the running lab's (each in its namespace), else this one. */
function nodesToShow(node: string | undefined): { node: string; netns?: string }[] {
  let lab: Lab | undefined;
  try {
    lab = Lab.open();
  } catch {
    lab = undefined; // no lab: a real node, in this namespace
  }
  if (lab) {
    const nodes = lab.topology.nodes().filter((n) => node === undefined || n.name === node);
    if (nodes.length > 0) return nodes.map((n) => ({ node: n.name, netns: n.netns }));
  }
  return [{ node: node ?? hostname() }];
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'which mode each interface runs the per-packet load balancer in (xdp-native, xdp-generic, tc)',
    )
    .option('--node <name>', 'only this node (default: every lab node, else this machine)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action((opts: { node?: string; output: 'table' | 'json' }) => {
      const listed = nodesToShow(opts.node).map((n) => ({
        node: n.node,
        interfaces: interfaceStatus(n.netns),
      }));
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
        return;
      }
      process.stdout.write(listed.map((l) => formatInterfaceStatus(l.node, l.interfaces)).join(''));
    });
}
