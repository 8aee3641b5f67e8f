/** `sluice lab ...`: command definitions only; the work is in src/lab. */
import type { Command } from 'commander';
import { Argument, InvalidArgumentError, Option } from 'commander';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { objectKey } from '../model/index.js';
import { formatGet, GET_KINDS } from '../lab/get.js';
import type { GetKind, GetOutput } from '../lab/get.js';
import { Lab } from '../lab/lab.js';
import type { PodAction } from '../lab/lab.js';
import { PROXY_MODES } from '../lab/proxy.js';
import type { ProxyMode } from '../lab/proxy.js';
import { formatProbe, ProbeUsageError, runProbe } from '../lab/probe/probe.js';
import type { ProbeProto } from '../lab/probe/protocol.js';
import { formatSummary } from '../lab/summary.js';

function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function podKey(text: string): string {
  const [ns, name] = text.includes('/') ? text.split('/', 2) : ['default', text];
  if (!ns || !name) throw new InvalidArgumentError(`expected NAMESPACE/POD, got '${text}'`);
  return objectKey(ns, name);
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a Kubernetes-like cluster on this machine, built of network namespaces')
    // Every lab command works in namespaces and cgroups: say so first if not root.
    .hook('preAction', () => requireBpfEnvironment());

  lab
    .command('up')
    .description('create the lab and apply the manifests (default: the embedded demo app)')
    .option('-f, --filename <path>', 'manifest file or directory (repeatable)', collect, [])
    .option('--nodes <n>', 'number of nodes when the manifests define none', integer(1, 16), 2)
    .addOption(
      new Option('--proxy <mode>', 'service proxy on every node')
        .choices(PROXY_MODES)
        .default('sluice'),
    )
    .addOption(
      new Option(
        '--iptables-backend <backend>',
        'iptables mode: which iptables-restore (default: the system one)',
      ).choices(['nft', 'legacy']),
    )
    .action(
      async (opts: {
        filename: string[];
        nodes: number;
        proxy: ProxyMode;
        iptablesBackend?: 'nft' | 'legacy';
      }) => {
        const started = process.hrtime.bigint();
        const up = await Lab.up({
          files: opts.filename,
          nodes: opts.nodes,
          proxy: opts.proxy,
          ...(opts.iptablesBackend ? { iptablesBackend: opts.iptablesBackend } : {}),
        });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        process.stdout.write(formatSummary(up, seconds));
      },
    );

  lab
    .command('apply')
    .description('create or update the objects in the manifests')
    .requiredOption('-f, --filename <path>', 'manifest file or directory (repeatable)', collect, [])
    .action(async (opts: { filename: string[] }) => {
      await Lab.open().apply(opts.filename);
      process.stdout.write(`applied ${opts.filename.join(', ')}\n`);
    });

  lab
    .command('delete')
    .description('delete the objects named in the manifests')
    .requiredOption('-f, --filename <path>', 'manifest file or directory (repeatable)', collect, [])
    .action(async (opts: { filename: string[] }) => {
      await Lab.open().delete(opts.filename);
      process.stdout.write(`deleted the objects of ${opts.filename.join(', ')}\n`);
    });

  lab
    .command('get')
    .description(`list objects: ${GET_KINDS.join('|')}`)
    .argument('<kind>', GET_KINDS.join('|'))
    .option('-n, --namespace <ns>', 'only this namespace')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['wide', 'yaml', 'json']),
    )
    .action(
      (
        kind: string,
        opts: { namespace?: string; output?: 'wide' | 'yaml' | 'json' },
        command: Command,
      ) => {
        const k = (kind === 'svc' ? 'services' : kind === 'po' ? 'pods' : kind) as GetKind;
        if (!GET_KINDS.includes(k))
          command.error(`error: unknown kind '${kind}' (${GET_KINDS.join(', ')})`);
        const output: GetOutput = opts.output ?? 'table';
        process.stdout.write(
          formatGet(Lab.open().state, k, {
            output,
            ...(opts.namespace ? { namespace: opts.namespace } : {}),
          }),
        );
      },
    );

  lab
    .command('exec')
    .description("run a command in a pod's network namespace and cgroup")
    .argument('<pod>', 'NAMESPACE/POD')
    .argument('<command...>', 'the command (put it after --)')
    .action(async (pod: string, argv: string[]) => {
      const result = await Lab.open().topology.execInPod(podKey(pod), argv, { allowFailure: true });
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      process.exitCode = result.code ?? 1;
    });

  lab
    .command('probe')
    .description(
      'connect from a pod (or external) to a pod, service, node port or address; exit 0 on success, 1 on failure',
    )
    .argument('<from>', 'NAMESPACE/POD or external')
    .argument('<to>', 'NAMESPACE/POD, svc/NAMESPACE/NAME, node/NAME or an IP')
    .option(
      '--port <port>',
      'port (service port, NodePort for node/, container port for a pod)',
      integer(1, 65535),
    )
    .addOption(
      new Option('--proto <proto>', 'protocol (default: from the port name)').choices([
        'tcp',
        'udp',
        'http',
        'redis',
        'connect',
      ]),
    )
    .option(
      '--request <request>',
      'http: "METHOD PATH"; redis: a command line; tcp/udp: a line to send',
    )
    .option('--count <n>', 'attempts (shows the spread over backends)', integer(1, 100000), 1)
    .option('--timeout <ms>', 'per attempt', integer(1, 600000), 2000)
    .option('--source-port <port>', 'the local port every attempt binds', integer(1, 65535))
    .option('--json', 'print the attempts as JSON')
    .action(
      async (
        from: string,
        to: string,
        opts: {
          port?: number;
          proto?: ProbeProto;
          request?: string;
          count: number;
          timeout: number;
          sourcePort?: number;
          json?: boolean;
        },
      ) => {
        const running = Lab.open();
        try {
          const result = await runProbe(running.state, running.topology, from, to, {
            count: opts.count,
            timeoutMs: opts.timeout,
            ...(opts.port !== undefined ? { port: opts.port } : {}),
            ...(opts.proto !== undefined ? { proto: opts.proto } : {}),
            ...(opts.request !== undefined ? { request: opts.request } : {}),
            ...(opts.sourcePort !== undefined ? { sourcePort: opts.sourcePort } : {}),
          });
          process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : formatProbe(result));
          process.exitCode = result.ok ? 0 : 1;
        } catch (error) {
          if (!(error instanceof ProbeUsageError)) throw error;
          process.stderr.write(`sluice: ${error.message}\n`);
          process.exitCode = 2;
        }
      },
    );

  lab
    .command('pod')
    .description("flip a pod's readiness or start its graceful termination")
    .addArgument(
      new Argument('<action>', 'ready|unready|terminate').choices([
        'ready',
        'unready',
        'terminate',
      ]),
    )
    .argument('<pod>', 'NAMESPACE/POD')
    .action(async (action: PodAction, pod: string) => {
      await Lab.open().setPod(podKey(pod), action);
      process.stdout.write(`pod ${podKey(pod)}: ${action}\n`);
    });

  lab
    .command('down')
    .description(
      'remove everything the lab made (namespaces, cgroups, processes, pins); idempotent',
    )
    .action(async () => {
      const report = await Lab.down();
      process.stdout.write(
        report.recorded || report.netns.length > 0
          ? `lab down: removed ${report.netns.length} namespaces, ${report.cgroups} cgroups, ${report.processes} processes${report.pins ? ', pins' : ''}\n`
          : 'lab down: no lab was up; nothing left behind\n',
      );
    });
}
