/** `sluice service list`: command definition only; the work is in src/agent/inspect.ts. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { PIN_BASE } from '../agent/config.js';
import { formatFrontends, listFrontends, readPinnedProgrammed } from '../agent/inspect.js';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { pinRoots } from './pins.js';

export function registerService(program: Command): void {
  const service = program
    .command('service')
    .description("a node's services as its eBPF datapath holds them")
    .hook('preAction', () => requireBpfEnvironment());

  service
    .command('list')
    .description('every frontend with its backends, read back from the pinned BPF maps')
    .option('--node <name>', 'only this node (default: every node found)')
    .option(
      '--pin-root <dir>',
      "the node's pin root (default: the lab's, else /sys/fs/bpf/sluice/<node>)",
    )
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action((opts: { node?: string; pinRoot?: string; output: 'table' | 'json' }) => {
      const roots = pinRoots(opts.node, opts.pinRoot);
      if (roots.length === 0) {
        process.stderr.write(`sluice: no sluice datapath is pinned under ${PIN_BASE}\n`);
        process.exit(1);
      }
      const listed = roots.map(([node, root]) => ({
        node,
        pinRoot: root,
        frontends: listFrontends(readPinnedProgrammed(root)),
      }));
      if (opts.output === 'json') {
        process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
        return;
      }
      process.stdout.write(listed.map((l) => formatFrontends(l.node, l.frontends)).join('\n'));
    });
}
