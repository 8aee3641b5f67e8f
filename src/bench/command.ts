/**
 * What `sluice bench` does: run the scenarios (modes interleaved), write DIR/results.json, then
 * render DIR/report.md from that file (and docs/benchmarks.md with --docs). Ctrl-C stops the
 * current run (the C child is killed by its PID, objects are closed) and writes nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { BenchError } from './errors.js';
import { renderReport } from './report.js';
import { machineInfo, readResults, writeResults } from './results.js';
import { runBench } from './runner.js';
import { selectScenarios } from './scenarios/index.js';

export const DEFAULT_RUNS = 5;
export const QUICK_RUNS = 3;
export const DEFAULT_OUT = 'bench-out';

/** The checked-in benchmark page: the latest full run. */
export const DOCS_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../docs/benchmarks.md',
);
export const DOCS_COMMAND = './sluice bench --docs';

export interface BenchCommandOptions {
  /** Scenario names; empty means all. */
  readonly scenarios: readonly string[];
  readonly quick: boolean;
  /** Runs per mode; default 5, or 3 with quick. */
  readonly runs?: number | undefined;
  readonly out: string;
  readonly cpu?: number | undefined;
  /** Service counts for the scenarios that scale with them (--services). */
  readonly services?: readonly number[] | undefined;
  /** Also write docs/benchmarks.md (refused with quick: the docs show a full run). */
  readonly docs: boolean;
  /** The sluice version recorded in results.json. */
  readonly sluice: string;
  readonly stderr?: NodeJS.WritableStream;
  readonly stdout?: NodeJS.WritableStream;
}

export type BenchOutcome = 'done' | 'interrupted';

/** The preface of docs/benchmarks.md. */
export function docsPreface(): string {
  return [
    'The latest full run of every scenario (not `--quick`), rendered from its `results.json`.',
    `Regenerate it (as root, after \`scripts/setup.sh\`) with`,
    `\`${DOCS_COMMAND}\`.`,
  ].join('\n');
}

export async function runBenchCommand(options: BenchCommandOptions): Promise<BenchOutcome> {
  const stderr = options.stderr ?? process.stderr;
  const stdout = options.stdout ?? process.stdout;
  const scenarios = selectScenarios(options.scenarios);
  if (options.docs && options.quick) {
    throw new BenchError('--docs records a full run: drop --quick');
  }
  const cpus = availableParallelism();
  if (options.cpu !== undefined && (options.cpu < 0 || options.cpu >= cpus)) {
    throw new BenchError(`--cpu ${options.cpu}: this machine has CPUs 0-${cpus - 1}`);
  }
  requireBpfEnvironment();

  const controller = new AbortController();
  const onSigint = (): void => {
    stderr.write('\ninterrupt: stopping (Ctrl-C again to force)\n');
    controller.abort(new Error('interrupted'));
  };
  // once: a second Ctrl-C falls through to Node's default and ends the process.
  process.once('SIGINT', onSigint);
  let results;
  try {
    results = await runBench({
      scenarios,
      runs: options.runs ?? (options.quick ? QUICK_RUNS : DEFAULT_RUNS),
      quick: options.quick,
      cpu: options.cpu,
      services: options.services,
      signal: controller.signal,
      write: (text) => void stderr.write(text),
      sluice: options.sluice,
      machine: machineInfo(),
    });
  } catch (error) {
    if (controller.signal.aborted) {
      stderr.write('sluice bench: interrupted, nothing written\n');
      return 'interrupted';
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }

  const resultsPath = writeResults(options.out, results);
  // The report is rendered from the file just written, never from the numbers in memory.
  const written = readResults(options.out);
  const report = renderReport(written);
  const reportPath = join(options.out, 'report.md');
  writeFileSync(reportPath, report);
  stderr.write(`wrote ${resultsPath} and ${reportPath}\n`);
  if (options.docs) {
    mkdirSync(dirname(DOCS_FILE), { recursive: true });
    writeFileSync(
      DOCS_FILE,
      renderReport(written, { title: 'Benchmarks', preface: docsPreface() }),
    );
    stderr.write(`wrote ${DOCS_FILE}\n`);
  }
  stdout.write(report);
  return 'done';
}
