/** `sluice sock list`: command definition only; the work is in src/datapath/sock-redirect.ts. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { PIN_BASE } from '../agent/config.js';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { formatSockList, readSockRedirect } from '../datapath/sock-redirect.js';
import { pinRoots } from './pins.js';

export function registerSock(program: Command): void {
  const sock = program
    .command('sock')
    .description("a node's accelerated and tuned TCP connections (socket acceleration)")
    .hook('preAction', () => requireBpfEnvironment());

  sock
    .command('list')
    .description(
      'connections sock_ops saw, whether each is in the sockhash now, its congestion control, and the counters',
    )
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
      const roots = pinRoots(opts.node, opts.pinRoot).filter(([, root]) =>
        existsSync(join(root, 'sockmap_conns')),
      );
      if (roots.length === 0) {
        process.stderr.write(
          `sluice: no socket acceleration is pinned under ${opts.pinRoot ?? PIN_BASE} (socketAcceleration.enabled in the agent's config)\n`,
        );
        process.exit(1);
      }
      const listed = roots.map(([node, root]) => ({
        node,
        pinRoot: root,
        ...readSockRedirect(root),
      }));
      if (opts.output === 'json') {
        const json = JSON.stringify(
          listed,
          (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
          2,
        );
        process.stdout.write(`${json}\n`);
        return;
      }
      process.stdout.write(listed.map((l) => formatSockList(l.node, l)).join('\n'));
    });
}
