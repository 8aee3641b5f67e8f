/** `sluice bpf ct list`: command definition only; the work is in src/agent/inspect.ts. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatConntrack, readPinnedConntrack } from '../agent/inspect.js';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { pinRoots } from './pins.js';

export function registerBpf(program: Command): void {
  const bpf = program
    .command('bpf')
    .description("a node's BPF maps, read back from their pins")
    .hook('preAction', () => requireBpfEnvironment());
  const ct = bpf.command('ct').description("the per-packet load balancer's connection tracking");
  ct.command('list')
    .description('every tracked flow: client -> frontend => backend, SNAT, TCP state, lifetime')
    .option('--node <name>', 'only this node (default: every node found)')
    .option(
      '--pin-root <dir>',
      "the node's pin root (default: the lab's, else /sys/fs/bpf/sluice/<node>)",
    )
    .option('--all', 'also flows past their lifetime (ignored by the datapath, not yet recycled)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action(
      (opts: { node?: string; pinRoot?: string; all?: boolean; output: 'table' | 'json' }) => {
        const roots = pinRoots(opts.node, opts.pinRoot);
        if (roots.length === 0) {
          process.stderr.write('sluice: no sluice datapath is pinned on this machine\n');
          process.exit(1);
        }
        // expires_ns is CLOCK_MONOTONIC (bpf_ktime_get_ns), the clock hrtime reads.
        const now = process.hrtime.bigint();
        const listed = roots.map(([node, root]) => ({
          node,
          flows: readPinnedConntrack(root, now).filter((f) => opts.all || f.expiresIn >= 0),
        }));
        if (opts.output === 'json') {
          process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
          return;
        }
        process.stdout.write(listed.map((l) => formatConntrack(l.node, l.flows)).join('\n'));
      },
    );
}
