/** `sluice agent`: command definition only; the work is in src/agent and src/sources. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { Agent } from '../agent/agent.js';
import { loadConfig } from '../agent/config.js';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { availableCongestionControls } from '../datapath/sock-redirect.js';
import { KubernetesSource } from '../sources/kubernetes.js';
import { ManifestsSource } from '../sources/manifests.js';
import type { Source } from '../sources/source.js';

const NODE_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description("the per-node service proxy: programs this node's eBPF load balancer")
    .requiredOption('--node <name>', 'the Kubernetes node this agent serves')
    .requiredOption('--source <source>', 'manifests:DIR (watched directory) or kubernetes')
    .option('--config <file>', 'YAML configuration (fields: docs/agent.md)')
    .action(async (opts: { node: string; source: string; config?: string }) => {
      if (!NODE_NAME.test(opts.node) || opts.node.includes('..')) {
        process.stderr.write(`sluice: --node ${opts.node}: not a Kubernetes node name\n`);
        process.exit(1);
      }
      const kubernetes = opts.source === 'kubernetes';
      if (
        !kubernetes &&
        (!opts.source.startsWith('manifests:') || opts.source.length === 'manifests:'.length)
      ) {
        process.stderr.write(
          `sluice: --source ${opts.source}: expected manifests:DIR or kubernetes\n`,
        );
        process.exit(1);
      }
      // Everything the user wrote is checked before anything is touched.
      const config = loadConfig(opts.config, opts.node);
      requireBpfEnvironment();
      const logger = pino({ base: { node: opts.node }, timestamp: pino.stdTimeFunctions.isoTime });
      // kubernetes: KUBECONFIG (or ~/.kube/config), else the in-cluster service account.
      const sourceOptions = {
        nodePortRange: config.nodePortRange,
        ...(config.perPacketLB.clusterCIDR ? { clusterCIDR: config.perPacketLB.clusterCIDR } : {}),
        congestionControls: availableCongestionControls(),
      };
      const source: Source = kubernetes
        ? new KubernetesSource({
            ...sourceOptions,
            logger,
          })
        : new ManifestsSource(resolve(opts.source.slice('manifests:'.length)), {
            ...sourceOptions,
            logger,
          });
      const agent = new Agent({ nodeName: opts.node, config, source, logger });
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        void agent.stop();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      try {
        await agent.run();
      } catch (error) {
        logger.fatal({ err: error }, 'agent failed');
        throw error;
      }
    });
}
