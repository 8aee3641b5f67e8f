/**
 * What `sluice bench` does: run the scenarios (modes interleaved), write DIR/results.json, then
 * render DIR/report.md and the SVG charts from that file (and docs/benchmarks.md with --docs).
 * Ctrl-C (SIGINT) or SIGTERM aborts the run: the current scenario stops its work (children are
 * killed by their PIDs), every plan's teardown removes its labs, namespaces and pins, nothing is
 * written, and the command exits non-zero (130, or 143 for SIGTERM).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBpfEnvironment } from '../bpf/environment.js';
import { BenchError } from './errors.js';
import { writeCharts } from './charts.js';
import { renderReport } from './report.js';
import type { BenchResults } from './results.js';
import { machineInfo, readResults, writeResults } from './results.js';
import type { Scenario } from './runner.js';
import { runBench } from './runner.js';
import { scenarioNames, selectScenarios } from './scenarios/index.js';

export const DEFAULT_RUNS = 5;
/** --quick: one run of each mode at small sizes, every scenario in under 3 minutes. */
export const QUICK_RUNS = 1;
export const DEFAULT_OUT = 'bench-out';

/** The checked-in benchmark page: the latest full run. */
export const DOCS_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../docs/benchmarks.md',
);
/** The docs page's results.json and charts (linked from it). */
export const DOCS_DATA_DIR = resolve(dirname(DOCS_FILE), 'benchmarks');
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
  /** Modes to run (--modes); undefined runs all. Scenarios with none of them are skipped. */
  readonly modes?: readonly string[] | undefined;
  /** Also write docs/benchmarks.md (refused with quick: the docs show a full run). */
  readonly docs: boolean;
  /** The sluice version recorded in results.json. */
  readonly sluice: string;
  /** Run nothing: render the report and charts (and the docs) from DIR/results.json. */
  readonly from?: string | undefined;
  readonly stderr?: NodeJS.WritableStream;
  readonly stdout?: NodeJS.WritableStream;
}

/** failed: some scenarios failed; the others' results were written. */
export type BenchOutcome = 'done' | 'interrupted' | 'failed';

/** The signal that interrupted the last run (for its exit status). */
export let lastSignal: 'SIGINT' | 'SIGTERM' | undefined;

/** Exit status of an interrupted run: 128 + the signal's number, as a shell reports it. */
export const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = {
  SIGINT: 130,
  SIGTERM: 143,
};

/**
 * The preface of docs/benchmarks.md. `recordedRuns` is the most runs any row of the recorded
 * run has (it may have been made with --runs), so the page never claims more than it holds.
 */
export function docsPreface(recordedRuns: number): string {
  const recorded =
    recordedRuns === DEFAULT_RUNS ? '' : `; the run below used \`--runs ${recordedRuns}\``;
  return [
    'Regenerate this page with one command, as root on a quiet machine after `scripts/setup.sh`:',
    `\`${DOCS_COMMAND}\` (every scenario, ${DEFAULT_RUNS} interleaved runs of each mode${recorded}). It rewrites`,
    "this page and `docs/benchmarks/` (the run's `results.json` and the SVG charts linked below);",
    `\`${DOCS_COMMAND} --from docs/benchmarks\` renders them again from that file without running`,
    'anything. The page is the latest full run (not `--quick`), rendered from its `results.json`',
    'alone, on the machine named below.',
  ].join('\n');
}

/**
 * The scenarios that run one of `modes` (all of them without --modes). A mode no selected
 * scenario has is refused with the ones they do have, rather than running nothing.
 */
export function withModes(
  scenarios: readonly Scenario[],
  modes: readonly string[] | undefined,
): Scenario[] {
  if (!modes) return [...scenarios];
  const known = [...new Set(scenarios.flatMap((s) => s.modes))];
  const unknown = modes.filter((m) => !known.includes(m));
  if (unknown.length > 0) {
    throw new BenchError(
      `--modes: ${unknown.join(', ')} is not a mode of ${scenarios.map((s) => s.name).join(', ')} (modes: ${known.join(', ')})`,
    );
  }
  return scenarios.filter((s) => s.modes.some((m) => modes.includes(m)));
}

export async function runBenchCommand(options: BenchCommandOptions): Promise<BenchOutcome> {
  const stderr = options.stderr ?? process.stderr;
  const stdout = options.stdout ?? process.stdout;
  if (options.from !== undefined) {
    await render(readResults(options.from), options, stderr, stdout);
    return 'done';
  }
  const scenarios = withModes(selectScenarios(options.scenarios), options.modes);
  if (options.docs && options.quick) {
    throw new BenchError('--docs records a full run: drop --quick');
  }
  if (options.docs && options.modes) {
    throw new BenchError('--docs records every mode: drop --modes');
  }
  const cpus = availableParallelism();
  if (options.cpu !== undefined && (options.cpu < 0 || options.cpu >= cpus)) {
    throw new BenchError(`--cpu ${options.cpu}: this machine has CPUs 0-${cpus - 1}`);
  }
  requireBpfEnvironment();

  const controller = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (received) {
      // A second signal: the default action ends the process at once, cleanup or not.
      stderr.write(`\n${signal} again: exiting without cleanup; 'sluice lab down' removes labs\n`);
      process.exit(SIGNAL_EXIT[signal]);
    }
    received = signal;
    stderr.write(`\n${signal}: stopping and cleaning up (send it again to force)\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const runs = options.runs ?? (options.quick ? QUICK_RUNS : DEFAULT_RUNS);
  stderr.write(
    `sluice bench: ${scenarios.map((s) => s.name).join(', ')}; ${runs} run${runs === 1 ? '' : 's'} of each mode${options.quick ? ', quick sizes' : ''}\n`,
  );
  let results;
  try {
    results = await runBench({
      scenarios,
      runs,
      quick: options.quick,
      cpu: options.cpu,
      services: options.services,
      modes: options.modes,
      signal: controller.signal,
      write: (text) => void stderr.write(text),
      sluice: options.sluice,
      machine: machineInfo(),
    });
  } catch (error) {
    if (controller.signal.aborted) {
      lastSignal = received;
      stderr.write('sluice bench: interrupted, cleaned up, nothing written\n');
      return 'interrupted';
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigterm);
  }
  const resultsPath = writeResults(options.out, results);
  stderr.write(`wrote ${resultsPath}\n`);
  // The report and charts are rendered from the file just written, never from the numbers in
  // memory.
  await render(readResults(options.out), options, stderr, stdout);
  if (results.failures) {
    const names = results.failures.map((f) => f.scenario).join(', ');
    stderr.write(`sluice bench: ${names} failed; the other scenarios' results are written\n`);
    return 'failed';
  }
  return 'done';
}

/** Writes report.md and the charts into --out, and the docs page with --docs. */
async function render(
  written: BenchResults,
  options: BenchCommandOptions,
  stderr: NodeJS.WritableStream,
  stdout: NodeJS.WritableStream,
): Promise<void> {
  mkdirSync(options.out, { recursive: true });
  if (options.from !== undefined && resolve(options.from) !== resolve(options.out)) {
    writeResults(options.out, written);
  }
  const all = scenarioNames();
  const report = renderReport(written, { charts: true, scenarios: all });
  const reportPath = join(options.out, 'report.md');
  writeFileSync(reportPath, report);
  const charts = await writeCharts(options.out, written);
  stderr.write(`wrote ${reportPath} and ${charts.length} charts in ${options.out}\n`);
  if (options.docs) {
    if (resolve(options.from ?? '') !== DOCS_DATA_DIR) writeResults(DOCS_DATA_DIR, written);
    const docsResults = readResults(DOCS_DATA_DIR);
    await writeCharts(DOCS_DATA_DIR, docsResults);
    mkdirSync(dirname(DOCS_FILE), { recursive: true });
    writeFileSync(
      DOCS_FILE,
      renderReport(docsResults, {
        title: 'Benchmarks',
        preface: docsPreface(Math.max(0, ...docsResults.results.map((r) => r.runs))),
        charts: true,
        chartDir: 'benchmarks',
        scenarios: all,
      }),
    );
    stderr.write(`wrote ${DOCS_FILE} and ${DOCS_DATA_DIR}\n`);
  }
  stdout.write(report);
}
