/**
 * Runs scenarios: every mode of a scenario once per run, interleaved (A B A B ...) within one
 * invocation, so drift of the machine (thermal, other load, page cache) spreads over all modes
 * instead of favouring whichever ran first.
 */
import type { Better, BenchResults, Machine, Params, ResultRow } from './results.js';
import { isoSeconds, summarize } from './results.js';

export interface MetricSpec {
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
}

export interface ScenarioOptions {
  /** Smaller sizes for a quick look (the runs count is chosen by the caller). */
  readonly quick: boolean;
  /** Pin the measured work to this CPU, where the scenario can. */
  readonly cpu: number | undefined;
  /** Service counts to measure at (--services), for scenarios that scale with them. */
  readonly services?: readonly number[] | undefined;
}

export interface RunContext {
  /** Aborted on Ctrl-C: the run stops its work, kills what it started and throws. */
  readonly signal: AbortSignal;
  /** Appends text to the current progress line (stderr). */
  readonly progress: (text: string) => void;
}

/** One metric value per metric name, from one run in one mode. */
export type Samples = Record<string, number>;

/** What a scenario runs for given options: the params recorded with its rows, and one run. */
export interface ScenarioPlan {
  readonly params: Params;
  /** The scenario's modes this plan runs (default: all of them), e.g. cases of one program. */
  readonly modes?: readonly string[];
  /** Prepares what every run needs (labs, rules); teardown undoes it, also after a failure. */
  setup?(ctx: RunContext): Promise<void>;
  run(mode: string, ctx: RunContext): Promise<Samples>;
  teardown?(): Promise<void>;
}

export interface Scenario {
  readonly name: string;
  /** Mode names (BENCH.md); the first is the reference the report compares the others with. */
  readonly modes: readonly string[];
  readonly metrics: readonly MetricSpec[];
  /** One plan per parameter set (e.g. per service count); each gets its own rows. */
  plan(options: ScenarioOptions): ScenarioPlan | readonly ScenarioPlan[];
}

export interface Slot<M> {
  /** 1-based run number. */
  readonly run: number;
  readonly mode: M;
}

/** The order of work: run 1 of every mode, then run 2 of every mode, and so on. */
export function schedule<M>(modes: readonly M[], runs: number): Slot<M>[] {
  if (!Number.isInteger(runs) || runs < 0) throw new RangeError(`runs must be >= 0, got ${runs}`);
  const out: Slot<M>[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes) out.push({ run, mode });
  }
  return out;
}

export interface RunOptions extends ScenarioOptions {
  readonly runs: number;
  readonly signal: AbortSignal;
  /** Where progress goes (stderr in the CLI). */
  readonly write: (text: string) => void;
}

function formatSamples(samples: Samples, metrics: readonly MetricSpec[]): string {
  return metrics
    .map((m) => {
      const v = samples[m.name] ?? NaN;
      return `${m.name} ${v >= 100 ? Math.round(v) : v.toPrecision(3)}`;
    })
    .join(', ');
}

/** Runs one scenario's modes interleaved, per plan, and summarizes each (mode, metric). */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const plan of [scenario.plan(options)].flat()) {
    const ctx: RunContext = { signal: options.signal, progress: options.write };
    try {
      await plan.setup?.(ctx);
      rows.push(...(await runPlan(scenario, plan, options, ctx)));
    } finally {
      await plan.teardown?.();
    }
  }
  return rows;
}

async function runPlan(
  scenario: Scenario,
  plan: ScenarioPlan,
  options: RunOptions,
  ctx: RunContext,
): Promise<ResultRow[]> {
  const modes = plan.modes ?? scenario.modes;
  const samples = new Map<string, Map<string, number[]>>(
    modes.map((mode) => [mode, new Map(scenario.metrics.map((m) => [m.name, []]))]),
  );
  const slots = schedule(modes, options.runs);
  const paramText = Object.entries(plan.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  for (const { run, mode } of slots) {
    options.signal.throwIfAborted();
    options.write(`[${scenario.name} ${paramText} run ${run}/${options.runs}] ${mode}: `);
    const started = performance.now();
    let got: Samples;
    try {
      got = await plan.run(mode, ctx);
    } catch (error) {
      options.write(options.signal.aborted ? 'interrupted\n' : 'failed\n');
      throw error;
    }
    for (const m of scenario.metrics) {
      const v = got[m.name];
      if (v === undefined || !Number.isFinite(v)) {
        throw new Error(`${scenario.name}/${mode}: run ${run} gave no number for ${m.name}`);
      }
      samples.get(mode)?.get(m.name)?.push(v);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    options.write(`${formatSamples(got, scenario.metrics)} (${seconds} s)\n`);
  }
  const rows: ResultRow[] = [];
  if (options.runs === 0) return rows;
  for (const mode of modes) {
    for (const m of scenario.metrics) {
      rows.push({
        scenario: scenario.name,
        mode,
        params: plan.params,
        metric: m.name,
        unit: m.unit,
        better: m.better,
        ...summarize(samples.get(mode)?.get(m.name) ?? []),
      });
    }
  }
  return rows;
}

export interface BenchOptions extends RunOptions {
  readonly scenarios: readonly Scenario[];
  readonly sluice: string;
  readonly machine: Machine;
}

/** Runs the scenarios one after another and assembles results.json. */
export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = isoSeconds(new Date());
  const results: ResultRow[] = [];
  for (const scenario of options.scenarios) results.push(...(await runScenario(scenario, options)));
  return { sluice: options.sluice, machine: options.machine, started, results };
}
