/**
 * Running the commands the lab is built with (`ip`, `sysctl` inside namespaces) and collecting
 * their output. Every failure becomes a LabError naming the command line and its stderr.
 */
import { spawn } from 'node:child_process';
import { LabError } from './errors.js';

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** The command is killed (SIGKILL) after this long. Default: no limit. */
  timeoutMs?: number;
  /** Resolve with the result even when the command exits non-zero. Default false. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  /** Exit code; null when the command was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Shell-like rendering of an argv, for messages. */
export function formatArgv(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new LabError('run: empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new LabError(`${formatArgv(argv)}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        timedOut,
      };
      if (code === 0 || options.allowFailure) resolve(result);
      else {
        const why = timedOut ? `timed out after ${options.timeoutMs} ms` : `exit ${code ?? signal}`;
        const detail = result.stderr.trim() || result.stdout.trim();
        reject(new LabError(`${formatArgv(argv)}: ${why}${detail ? `: ${detail}` : ''}`));
      }
    });
    // A command that exits without reading its stdin makes the write fail with EPIPE; the exit
    // code tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Runs many `ip` commands in one process (`ip -batch -`), inside `netns` when given. One
 * process per batch instead of one per command is what makes 100 pods come up in a second.
 */
export async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  const argv = netns === undefined ? ['ip', '-batch', '-'] : ['ip', '-n', netns, '-batch', '-'];
  await run(argv, { input: `${lines.join('\n')}\n` });
}

/** Runs fn over items with at most `limit` calls in flight; rejects with the first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
