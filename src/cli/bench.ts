/** `sluice bench`: command definition only; the work is in src/bench. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { BenchError } from '../bench/errors.js';
import {
  DEFAULT_OUT,
  DEFAULT_RUNS,
  lastSignal,
  QUICK_RUNS,
  runBenchCommand,
  SIGNAL_EXIT,
} from '../bench/command.js';
import { scenarioNames } from '../bench/scenarios/index.js';
import { version } from './version.js';

function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return n;
  };
}

interface BenchFlags {
  quick: boolean;
  runs?: number;
  out: string;
  cpu?: number;
  services?: number[];
  modes?: string[];
  docs: boolean;
  from?: string;
}

export function registerBench(program: Command): void {
  const names = scenarioNames();
  program
    .command('bench')
    .description(
      'benchmark sluice against its baselines, modes interleaved; writes DIR/results.json, DIR/report.md and SVG charts',
    )
    .argument('[scenario...]', `scenarios to run: ${names.join(', ')} (default: all)`)
    .option(
      '--quick',
      `${QUICK_RUNS} run and small sizes: every scenario in a few minutes, for a quick look`,
      false,
    )
    .option(
      '--runs <n>',
      `runs per mode (default: ${DEFAULT_RUNS}, --quick: ${QUICK_RUNS})`,
      integer(1),
    )
    .option('--out <dir>', 'output directory', DEFAULT_OUT)
    .option('--cpu <n>', 'pin the measured work to this CPU (default: no pinning)', integer(0))
    .option(
      '--services <list>',
      'service counts for scenarios that scale with them, e.g. 1,1000,10000',
      (value: string) => value.split(',').map((n) => integer(1)(n.trim())),
    )
    .option(
      '--modes <list>',
      'run only these modes, e.g. sluice-xdp,xdp-fwd (scenarios without any are skipped; not with --docs)',
      (value: string) => value.split(',').map((m) => m.trim()),
    )
    .option('--docs', 'also write docs/benchmarks.md from this run (not with --quick)', false)
    .option(
      '--from <dir>',
      'run nothing: render report.md and the charts (and with --docs the docs page) from DIR/results.json',
    )
    .action(async (scenarios: string[], flags: BenchFlags, command: Command) => {
      const unknown = scenarios.filter((s) => !names.includes(s));
      if (unknown.length > 0) {
        command.error(
          `error: unknown scenario ${unknown.join(', ')} (available: ${names.join(', ')})`,
        );
      }
      if (flags.docs && flags.quick) {
        command.error('error: --docs records a full run: drop --quick');
      }
      try {
        const outcome = await runBenchCommand({
          scenarios,
          quick: flags.quick,
          runs: flags.runs,
          out: flags.out,
          cpu: flags.cpu,
          services: flags.services,
          modes: flags.modes,
          docs: flags.docs,
          from: flags.from,
          sluice: version(),
        });
        if (outcome === 'interrupted') process.exitCode = SIGNAL_EXIT[lastSignal ?? 'SIGINT'];
        if (outcome === 'failed') process.exitCode = 1;
      } catch (error) {
        if (error instanceof BenchError) command.error(`error: ${error.message}`);
        throw error;
      }
    });
}
