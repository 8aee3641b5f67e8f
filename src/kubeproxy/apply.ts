/**
 * Applying the kube-proxy baselines inside a network namespace, the way kube-proxy applies them
 * on a node: `iptables-restore -w 5 -W 100000 --noflush --counters` (full and partial syncs
 * alike), `iptables -C`/`-I` for the jumps from the built-in chains, `nft -f -` for a knftables
 * transaction. Every command runs through `ip netns exec NS`, and NS must be one of the
 * project's own (`sl-*`): nothing here can touch the root namespace. Each call reports how long
 * the command took (spawn to exit, `ip netns exec` included) for the benchmarks.
 */
import { SluiceError } from '../errors.js';
import { spawn } from 'node:child_process';
import { IPTABLES_JUMPS, jumpRuleArgs } from './iptables.js';
import { NFT_FAMILY, NFT_TABLE } from './nftables.js';

/** Which kernel interface iptables programs: nf_tables (Debian's default) or legacy xtables. */
export type IptablesBackend = 'nft' | 'legacy';
/** 'default': whatever `iptables-restore` is on this machine (update-alternatives). */
export type IptablesBackendChoice = IptablesBackend | 'default';
export type ProxyMode = 'iptables' | 'nftables';

/** kube-proxy's --wait flags for iptables >= 1.6.2 (-W is ignored by the nft backend). */
const WAIT_FLAGS = ['-w', '5', '-W', '100000'] as const;
/**
 * The jump preamble's wait: longer than kube-proxy's. It runs once per node and is never timed,
 * and on a host running several labs (each node's iptables shares the host-wide
 * /run/xtables.lock, which a real node's kube-proxy has to itself) another lab's 10k-service
 * restore holds the lock for longer than 5 s. The timed restores keep -w 5: waiting there would
 * count another lab's work as this one's.
 */
const SETUP_WAIT_FLAGS = ['-w', '60', '-W', '100000'] as const;

const COMMANDS: Record<IptablesBackendChoice, { iptables: string; save: string; restore: string }> =
  {
    default: { iptables: 'iptables', save: 'iptables-save', restore: 'iptables-restore' },
    nft: { iptables: 'iptables-nft', save: 'iptables-nft-save', restore: 'iptables-nft-restore' },
    legacy: {
      iptables: 'iptables-legacy',
      save: 'iptables-legacy-save',
      restore: 'iptables-legacy-restore',
    },
  };

/** A command run by this module failed; `stderr` is the tool's own message. */
export class ProxyCommandError extends SluiceError {
  constructor(
    readonly netns: string,
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    detail = '',
  ) {
    super(
      'PROXY_COMMAND',
      `ip netns exec ${netns} ${argv.join(' ')}: exit ${exitCode ?? 'signal'}: ${stderr.trim()}${detail}`,
    );
    this.name = 'ProxyCommandError';
  }
}

export interface ApplyResult {
  /** Wall time of the command, milliseconds. */
  durationMs: number;
  /** argv run inside the namespace. */
  argv: string[];
}

export interface IptablesApplyResult extends ApplyResult {
  /** The backend that ran, from the tool's own `--version` ("(nf_tables)" or "(legacy)"). */
  backend: IptablesBackend;
}

interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  durationMs: number;
}

function checkNetns(netns: string): void {
  if (!/^sl-[A-Za-z0-9._-]+$/.test(netns)) {
    throw new RangeError(
      `refusing to program namespace ${JSON.stringify(netns)}: only the project's own sl-* namespaces`,
    );
  }
}

function run(netns: string, argv: readonly string[], input?: string): Promise<RunResult> {
  checkNetns(netns);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // The tool may exit before reading all its input; its exit status says why.
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (exitCode) => {
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        exitCode,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    child.stdin.end(input ?? '');
  });
}

async function runChecked(
  netns: string,
  argv: readonly string[],
  input?: string,
): Promise<RunResult> {
  const result = await run(netns, argv, input);
  if (result.exitCode !== 0) {
    throw new ProxyCommandError(
      netns,
      argv,
      result.exitCode,
      result.stderr,
      failedLines(result.stderr, input),
    );
  }
  return result;
}

/** iptables-restore says "line N failed"; quote that line (and its neighbours) of the input. */
function failedLines(stderr: string, input?: string): string {
  const m = /line (\d+) failed/.exec(stderr);
  if (!m || input === undefined) return '';
  const n = Number(m[1]);
  const lines = input.split('\n');
  const from = Math.max(1, n - 2);
  const shown = lines
    .slice(from - 1, n + 1)
    .map((l, i) => `${from + i === n ? '>' : ' '} ${from + i}: ${l}`);
  return `\n${shown.join('\n')}`;
}

const backendCache = new Map<string, IptablesBackend>();

/** The backend an iptables tool drives, from its `--version` line. */
export async function iptablesBackendOf(netns: string, command: string): Promise<IptablesBackend> {
  const cached = backendCache.get(command);
  if (cached) return cached;
  const { stdout } = await runChecked(netns, [command, '--version']);
  let backend: IptablesBackend;
  if (stdout.includes('(nf_tables)')) backend = 'nft';
  else if (stdout.includes('(legacy)')) backend = 'legacy';
  else
    throw new Error(`${command} --version: cannot tell the backend from ${JSON.stringify(stdout)}`);
  backendCache.set(command, backend);
  return backend;
}

export interface ApplyIptablesOptions {
  /** --noflush (default true: kube-proxy never flushes whole tables, full sync included). */
  noflush?: boolean;
  /** --counters (default true, as kube-proxy). */
  counters?: boolean;
  /** default: `iptables-restore` (on Debian the nf_tables backend); or nft / legacy. */
  backend?: IptablesBackendChoice;
}

/** Runs iptables-restore inside the namespace with the given input. */
export async function applyIptables(
  netns: string,
  text: string,
  opts: ApplyIptablesOptions = {},
): Promise<IptablesApplyResult> {
  const commands = COMMANDS[opts.backend ?? 'default'];
  const backend = await iptablesBackendOf(netns, commands.restore);
  const argv = [commands.restore, ...WAIT_FLAGS];
  if (opts.noflush ?? true) argv.push('--noflush');
  if (opts.counters ?? true) argv.push('--counters');
  const result = await runChecked(netns, argv, text);
  return { durationMs: result.durationMs, argv, backend };
}

export interface EnsureJumpsResult extends IptablesApplyResult {
  /** Jump rules that were missing and got inserted. */
  inserted: number;
  /** iptables processes run (kube-proxy runs the same sequence on every full sync). */
  commands: number;
}

/**
 * kube-proxy's full-sync preamble: for each jump, EnsureChain (`iptables -N`, "exists" is
 * fine) then EnsureRule(Prepend) (`iptables -C`, and `-I` when missing).
 */
export async function ensureIptablesJumps(
  netns: string,
  opts: { backend?: IptablesBackendChoice } = {},
): Promise<EnsureJumpsResult> {
  const commands = COMMANDS[opts.backend ?? 'default'];
  const backend = await iptablesBackendOf(netns, commands.iptables);
  const started = process.hrtime.bigint();
  let inserted = 0;
  let count = 0;
  for (const jump of IPTABLES_JUMPS) {
    const newChain = [commands.iptables, ...SETUP_WAIT_FLAGS, '-N', jump.target, '-t', jump.table];
    const created = await run(netns, newChain);
    count++;
    if (created.exitCode !== 0 && !/exists/i.test(created.stderr)) {
      throw new ProxyCommandError(netns, newChain, created.exitCode, created.stderr);
    }
    const rule = jumpRuleArgs(jump);
    const check = [
      commands.iptables,
      ...SETUP_WAIT_FLAGS,
      '-C',
      jump.chain,
      '-t',
      jump.table,
      ...rule,
    ];
    const checked = await run(netns, check);
    count++;
    if (checked.exitCode === 0) continue;
    if (checked.exitCode !== 1) {
      throw new ProxyCommandError(netns, check, checked.exitCode, checked.stderr);
    }
    await runChecked(netns, [
      commands.iptables,
      ...SETUP_WAIT_FLAGS,
      '-I',
      jump.chain,
      '-t',
      jump.table,
      ...rule,
    ]);
    count++;
    inserted++;
  }
  return {
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    argv: [commands.iptables],
    backend,
    inserted,
    commands: count,
  };
}

/** Chain names of one table, from iptables-save (kube-proxy's existingNATChains). */
export async function iptablesChains(
  netns: string,
  table: 'nat' | 'filter',
  opts: { backend?: IptablesBackendChoice } = {},
): Promise<string[]> {
  const { stdout } = await runChecked(netns, [
    COMMANDS[opts.backend ?? 'default'].save,
    '-t',
    table,
  ]);
  return parseSave(stdout).chains;
}

function parseSave(text: string): { chains: string[]; rules: string[] } {
  const chains: string[] = [];
  const rules: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) chains.push(line.slice(1).split(' ')[0] ?? '');
    else if (line.startsWith('-A ')) rules.push(line);
  }
  return { chains, rules };
}

/** Runs `nft -f -` inside the namespace. */
export async function applyNftables(netns: string, script: string): Promise<ApplyResult> {
  const argv = ['nft', '-f', '-'];
  const result = await runChecked(netns, argv, script);
  return { durationMs: result.durationMs, argv };
}

/** Names of the chains or sets in the kube-proxy table (empty when there is no table). */
export async function nftablesObjects(netns: string, kind: 'chains' | 'sets'): Promise<string[]> {
  const { stdout } = await runChecked(netns, ['nft', '-j', 'list', kind, NFT_FAMILY]);
  const parsed = JSON.parse(stdout) as {
    nftables?: Record<string, { table?: string; name?: string }>[];
  };
  const singular = kind.slice(0, -1);
  const names: string[] = [];
  for (const entry of parsed.nftables ?? []) {
    const obj = entry[singular];
    if (obj?.table === NFT_TABLE && typeof obj.name === 'string') names.push(obj.name);
  }
  return names;
}

export interface FlushResult extends ApplyResult {
  /** What was removed: KUBE-* chains per iptables backend, or nftables tables. */
  removed: Record<string, number>;
}

/**
 * Removes everything a proxy mode installed in the namespace (for switching modes and clean-up):
 * iptables: every KUBE-* chain in nat and filter and the jumps to them, in both backends (a
 * namespace may hold rules of either); nftables: the kube-proxy table (ip and ip6), as
 * kube-proxy's CleanupLeftovers does.
 */
export async function flushProxy(netns: string, mode: ProxyMode): Promise<FlushResult> {
  const started = process.hrtime.bigint();
  const removed: Record<string, number> = {};
  const argv: string[] = [];
  if (mode === 'iptables') {
    for (const backend of ['nft', 'legacy'] as const) {
      const commands = COMMANDS[backend];
      let count = 0;
      for (const table of ['nat', 'filter'] as const) {
        const saved = parseSave((await runChecked(netns, [commands.save, '-t', table])).stdout);
        const ours = saved.chains.filter((c) => c.startsWith('KUBE-'));
        if (ours.length === 0) continue;
        const lines = [`*${table}`];
        for (const rule of saved.rules) {
          const chain = rule.split(' ')[1] ?? '';
          // Jumps from built-in chains into ours; rules inside our chains go with them.
          if (!chain.startsWith('KUBE-') && /(^| )-j KUBE-/.test(rule)) {
            lines.push(`-D${rule.slice(2)}`);
          }
        }
        for (const c of ours) lines.push(`:${c} - [0:0]`);
        for (const c of ours) lines.push(`-X ${c}`);
        lines.push('COMMIT', '');
        const restore = [commands.restore, ...WAIT_FLAGS, '--noflush'];
        await runChecked(netns, restore, lines.join('\n'));
        argv.push(restore.join(' '));
        count += ours.length;
      }
      removed[`iptables-${backend}`] = count;
    }
  } else {
    const { stdout } = await runChecked(netns, ['nft', 'list', 'tables']);
    let count = 0;
    for (const family of ['ip', 'ip6']) {
      if (stdout.split('\n').some((l) => l.trim() === `table ${family} ${NFT_TABLE}`)) {
        const del = ['nft', 'delete', 'table', family, NFT_TABLE];
        await runChecked(netns, del);
        argv.push(del.join(' '));
        count++;
      }
    }
    removed.nftables = count;
  }
  return { durationMs: Number(process.hrtime.bigint() - started) / 1e6, argv, removed };
}
