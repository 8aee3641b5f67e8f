/**
 * The doctor's real attach test, parent side. Attaching XDP or TC needs an interface, and the
 * machine's own interfaces are off limits (DESIGN.md, safety rules), so the test makes a scratch
 * network namespace `sl-doctor-<pid>` holding a veth pair, runs netns-probe.js inside it with
 * `ip netns exec`, and deletes the namespace afterwards: on success, on failure, on SIGINT or
 * SIGTERM, and (for namespaces left by a doctor that was killed) on the next run.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const NETNS_PREFIX = 'sl-doctor-';
/** The veth pair inside the scratch namespace; the probe attaches to the first. */
export const VETH = ['sl-dr0', 'sl-dr1'] as const;
const PROBE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'netns-probe.js');

/** One attach attempt: whether it worked, and the error when it did not. */
export interface AttachOutcome {
  ok: boolean;
  error?: string;
}

/** What netns-probe.js prints (one JSON line). */
export type NetnsProbeReport =
  | {
      ok: true;
      xdpNative: AttachOutcome;
      /** Tried only when native fails, to tell the operator whether generic mode would do. */
      xdpGeneric: AttachOutcome | null;
      tcIngress: AttachOutcome;
      tcEgress: AttachOutcome;
    }
  | { ok: false; error: string };

export type NetnsProbeResult = Extract<NetnsProbeReport, { ok: true }>;

/** The test could not run at all; `fix` says what to do, in one sentence. */
export class NetnsProbeFailure extends Error {
  readonly fix: string;
  constructor(message: string, fix: string) {
    super(message);
    this.name = 'NetnsProbeFailure';
    this.fix = fix;
  }
}

export interface NetnsProbeOptions {
  /** Namespace name; must start with `sl-`. Default `sl-doctor-<pid>`. */
  name?: string;
  /** The child script. Default dist/doctor/netns-probe.js. */
  script?: string;
  /** The child is killed after this long. Default 60 s. */
  timeoutMs?: number;
}

function isOutcome(value: unknown): value is AttachOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.ok === 'boolean' && (v.error === undefined || typeof v.error === 'string');
}

/** Parses the child's last stdout line; null when it is not a well-formed report. */
export function parseProbeReport(stdout: string): NetnsProbeReport | null {
  const last = stdout.trim().split('\n').pop() ?? '';
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.ok === false) return typeof v.error === 'string' ? { ok: false, error: v.error } : null;
  if (v.ok !== true) return null;
  const { xdpNative, xdpGeneric, tcIngress, tcEgress } = v;
  if (!isOutcome(xdpNative) || !isOutcome(tcIngress) || !isOutcome(tcEgress)) return null;
  if (xdpGeneric !== null && !isOutcome(xdpGeneric)) return null;
  return { ok: true, xdpNative, xdpGeneric, tcIngress, tcEgress };
}

/** Names of the network namespaces `ip netns list` shows. */
export function listNetns(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe', encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => line.trim().split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

function deleteNetns(name: string): void {
  if (!listNetns().includes(name)) return;
  execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes sl-doctor-<pid> namespaces whose doctor process no longer exists. */
function reapStale(): void {
  for (const name of listNetns()) {
    const match = /^sl-doctor-(\d+)$/.exec(name);
    const pid = Number(match?.[1] ?? NaN);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) deleteNetns(name);
  }
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const e = error as Error & { stderr?: unknown; code?: unknown; killed?: unknown };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').pop() : undefined;
  if (e.killed === true) return 'the test process was killed after its time limit';
  return stderr || firstLine(e.message);
}

/** Commands running now, so a signal can end them before the namespace goes. */
const running = new Set<ChildProcess>();

async function run(args: string[], fix: string, timeoutMs: number): Promise<string> {
  const [cmd, ...rest] = args;
  if (cmd === undefined) throw new Error('empty command');
  const pending = execFileAsync(cmd, rest, {
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  running.add(pending.child);
  try {
    return (await pending).stdout;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NetnsProbeFailure(
        `${cmd} not found`,
        cmd === 'ip' ? 'install iproute2 (the ip command)' : `install ${cmd}`,
      );
    }
    throw new NetnsProbeFailure(`${args.slice(0, 3).join(' ')}: ${describe(error)}`, fix);
  } finally {
    running.delete(pending.child);
  }
}

/**
 * Runs the attach test in a scratch namespace and returns what the child found. Throws
 * NetnsProbeFailure when the test itself could not run. The namespace is gone when this
 * settles, whichever way.
 */
export async function runNetnsProbe(options: NetnsProbeOptions = {}): Promise<NetnsProbeResult> {
  const ns = options.name ?? `${NETNS_PREFIX}${process.pid}`;
  if (!ns.startsWith('sl-')) throw new Error(`scratch namespace '${ns}' must start with sl-`);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const script = options.script ?? PROBE_SCRIPT;

  try {
    reapStale();
  } catch (error) {
    throw new NetnsProbeFailure(
      `ip netns list: ${describe(error)}`,
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'install iproute2 (the ip command)'
        : 'check that ip netns works (as root)',
    );
  }
  await run(
    ['ip', 'netns', 'add', ns],
    'use a kernel with network namespaces (CONFIG_NET_NS) and a writable /run/netns',
    timeoutMs,
  );

  // From here on the namespace exists: whatever happens, delete it (after ending the test
  // process when a signal or exit cuts the run short; ip netns exec runs node in its place).
  const cleanup = (): void => {
    for (const child of running) child.kill('SIGKILL');
    try {
      deleteNetns(ns);
    } catch {
      process.stderr.write(
        `sluice doctor: could not delete namespace ${ns}: run ip netns del ${ns}\n`,
      );
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanup();
    detachHandlers();
    process.kill(process.pid, signal); // the default action, now that nothing is left behind
  };
  const detachHandlers = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', cleanup);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanup);

  try {
    const [a, b] = VETH;
    const vethFix = 'use a kernel with veth support (CONFIG_VETH)';
    await run(
      ['ip', '-n', ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b],
      vethFix,
      timeoutMs,
    );
    await run(['ip', '-n', ns, 'link', 'set', a, 'up'], vethFix, timeoutMs);
    await run(['ip', '-n', ns, 'link', 'set', b, 'up'], vethFix, timeoutMs);
    const stdout = await run(
      ['ip', 'netns', 'exec', ns, process.execPath, script, a],
      'build sluice (npm run build) and check the error',
      timeoutMs,
    );
    const report = parseProbeReport(stdout);
    if (!report) {
      throw new NetnsProbeFailure(
        `the attach test printed no report: ${firstLine(stdout) || '(nothing)'}`,
        'build sluice (npm run build) and check the error',
      );
    }
    if (!report.ok) {
      throw new NetnsProbeFailure(
        `the attach test failed: ${report.error}`,
        'build the BPF objects (make -C bpf) and make sure libbpf can load them',
      );
    }
    return report;
  } finally {
    detachHandlers();
    cleanup();
  }
}
