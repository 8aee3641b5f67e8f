/**
 * Runs scenarios: every mode of a scenario once per run, interleaved (A B A B ...) within one
 * invocation, so drift of the machine (thermal, other load, page cache) spreads over all modes
 * instead of favouring whichever ran first.
 */
import { formatDuration, ScenarioProgress } from './progress.js';
import type { Better, BenchResults, Machine, Params, ResultRow } from './results.js';
import { isoSeconds, summarize } from './results.js';

export interface MetricSpec {
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  /**
   * The modes that measure it, where some cannot (default: every mode); the others get no row
   * for it rather than a made-up number.
   */
  readonly modes?: readonly string[];
  /**
   * A run may give no value for it (pps's cpu-ns-per-packet when no packet arrived: there is no
   * cost per packet to divide). The row then summarizes the runs that gave one (its `runs` says
   * how many), and a mode with none gets no row; any other metric missing from a run is an error.
   */
  readonly optional?: boolean;
}

const measures = (m: MetricSpec, mode: string): boolean => !m.modes || m.modes.includes(mode);

export interface ScenarioOptions {
  /** Smaller sizes for a quick look (the runs count is chosen by the caller). */
  readonly quick: boolean;
  /** Pin the measured work to this CPU, where the scenario can. */
  readonly cpu: number | undefined;
  /** Service counts to measure at (--services), for scenarios that scale with them. */
  readonly services?: readonly number[] | undefined;
  /**
   * The modes to run (--modes), by name; undefined runs every mode. A scenario with none of
   * them runs nothing, so one slow comparison can be repeated without the rest.
   */
  readonly modes?: readonly string[] | undefined;
}

export interface RunContext {
  /** Aborted on Ctrl-C: the run stops its work, kills what it started and throws. */
  readonly signal: AbortSignal;
  /** Appends text to the current progress line (stderr). */
  readonly progress: (text: string) => void;
  /**
   * Records a fact about how the figures were taken (e.g. NOTE.generatorCpus), kept in the rows'
   * `notes` in results.json and shown by the report. Called during setup it applies to every
   * mode of the plan; during run() to the mode being run.
   */
  readonly note: (key: string, value: string | number) => void;
}

/** Note keys the report knows: where the load generator and the measured path ran. */
export const NOTE = {
  /** CPUs the traffic generator / client ran on, e.g. "1" or "0-1" (taskset list). */
  generatorCpus: 'generator-cpus',
  /** CPUs the measured path (the forwarding node, the agent, the program) ran on. */
  measuredCpus: 'measured-cpus',
} as const;

/** One metric value per metric name, from one run in one mode. */
export type Samples = Record<string, number>;

/** What a scenario runs for given options: the params recorded with its rows, and one run. */
export interface ScenarioPlan {
  readonly params: Params;
  /** The modes this plan runs, a subset of the scenario's (default: all of them). */
  readonly modes?: readonly string[];
  /** Facts recorded with every row of the plan (see RunContext.note). */
  readonly notes?: Params;
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
  /** This scenario's 1-based position among those run, and their count (progress lines). */
  readonly index?: number;
  readonly count?: number;
  /**
   * A failed plan (one params group) is passed here and the scenario goes on with its other
   * plans, so one bad group (say 10k services in one flow regime) does not discard the rows
   * of the others. Without it, the first failure ends the scenario.
   */
  readonly onPlanFailure?: (params: Params, error: unknown) => void;
}

function formatSamples(samples: Samples, metrics: readonly MetricSpec[]): string {
  return metrics
    .filter((m) => samples[m.name] !== undefined)
    .map((m) => {
      const v = samples[m.name] ?? NaN;
      return `${m.name} ${v >= 100 ? Math.round(v) : v.toPrecision(3)}`;
    })
    .join(', ');
}

/** The modes a plan runs, in the scenario's order, narrowed to `selected` (--modes) if given. */
export function planModes(
  scenario: Scenario,
  plan: ScenarioPlan,
  selected?: readonly string[],
): string[] {
  for (const m of plan.modes ?? []) {
    if (!scenario.modes.includes(m)) {
      throw new Error(`${scenario.name}: plan mode '${m}' is not one of the scenario's modes`);
    }
  }
  return scenario.modes.filter(
    (m) => (!plan.modes || plan.modes.includes(m)) && (!selected || selected.includes(m)),
  );
}

/** Runs one scenario's modes interleaved, per plan, and summarizes each (mode, metric). */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ResultRow[]> {
  options.signal.throwIfAborted();
  // A plan left with no mode by --modes is not set up at all (no lab for nothing to run).
  const plans = [scenario.plan(options)]
    .flat()
    .filter((p) => planModes(scenario, p, options.modes).length > 0);
  const progress = new ScenarioProgress({
    scenario: scenario.name,
    index: options.index ?? 1,
    count: options.count ?? 1,
    totalSlots: plans.reduce(
      (n, p) => n + planModes(scenario, p, options.modes).length * options.runs,
      0,
    ),
    write: options.write,
  });
  const rows: ResultRow[] = [];
  for (const plan of plans) {
    const notes = new PlanNotes(plan.notes);
    const ctx: RunContext = {
      signal: options.signal,
      progress: options.write,
      note: (key, value) => notes.set(key, value),
    };
    try {
      options.signal.throwIfAborted();
      await plan.setup?.(ctx);
      rows.push(...(await runPlan(scenario, plan, options, ctx, notes, progress)));
    } catch (error) {
      if (options.signal.aborted || !options.onPlanFailure) throw error;
      options.onPlanFailure(plan.params, error);
    } finally {
      await plan.teardown?.();
    }
  }
  return rows;
}

/** Notes of one plan: those set during setup apply to all modes, later ones to their mode. */
class PlanNotes {
  private readonly common: Record<string, string | number>;
  private readonly perMode = new Map<string, Record<string, string | number>>();
  mode: string | undefined;

  constructor(initial: Params | undefined) {
    this.common = { ...initial };
  }

  set(key: string, value: string | number): void {
    if (this.mode === undefined) {
      this.common[key] = value;
      return;
    }
    const m = this.perMode.get(this.mode) ?? {};
    m[key] = value;
    this.perMode.set(this.mode, m);
  }

  of(mode: string): Params | undefined {
    const all = { ...this.common, ...this.perMode.get(mode) };
    return Object.keys(all).length > 0 ? all : undefined;
  }
}

async function runPlan(
  scenario: Scenario,
  plan: ScenarioPlan,
  options: RunOptions,
  ctx: RunContext,
  notes: PlanNotes,
  progress: ScenarioProgress,
): Promise<ResultRow[]> {
  const modes = planModes(scenario, plan, options.modes);
  const samples = new Map<string, Map<string, number[]>>(
    modes.map((mode) => [mode, new Map(scenario.metrics.map((m) => [m.name, []]))]),
  );
  const slots = schedule(modes, options.runs);
  const paramText = Object.entries(plan.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  for (const { run, mode } of slots) {
    options.signal.throwIfAborted();
    progress.begin(paramText, run, options.runs, mode);
    notes.mode = mode;
    let got: Samples;
    try {
      got = await plan.run(mode, ctx);
    } catch (error) {
      options.write(options.signal.aborted ? 'interrupted\n' : 'failed\n');
      throw error;
    } finally {
      notes.mode = undefined;
    }
    for (const m of scenario.metrics) {
      if (!measures(m, mode)) continue;
      const v = got[m.name];
      if (v === undefined && m.optional) continue;
      if (v === undefined || !Number.isFinite(v)) {
        throw new Error(`${scenario.name}/${mode}: run ${run} gave no number for ${m.name}`);
      }
      samples.get(mode)?.get(m.name)?.push(v);
    }
    progress.end(formatSamples(got, scenario.metrics));
  }
  const rows: ResultRow[] = [];
  if (options.runs === 0) return rows;
  for (const mode of modes) {
    const rowNotes = notes.of(mode);
    for (const m of scenario.metrics) {
      if (!measures(m, mode)) continue;
      if (m.optional && !samples.get(mode)?.get(m.name)?.length) continue;
      rows.push({
        scenario: scenario.name,
        mode,
        params: plan.params,
        metric: m.name,
        unit: m.unit,
        better: m.better,
        ...summarize(samples.get(mode)?.get(m.name) ?? []),
        ...(rowNotes ? { notes: rowNotes } : {}),
      });
    }
  }
  return rows;
}

export interface BenchOptions extends RunOptions {
  readonly scenarios: readonly Scenario[];
  /** Throw on the first failed scenario instead of recording it and going on. */
  readonly stopOnFailure?: boolean;
  readonly sluice: string;
  readonly machine: Machine;
}

/** Runs the scenarios one after another and assembles results.json. */
export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = isoSeconds(new Date());
  const results: ResultRow[] = [];
  const failures: { scenario: string; error: string }[] = [];
  const count = options.scenarios.length;
  const t0 = performance.now();
  for (const [i, scenario] of options.scenarios.entries()) {
    const t = performance.now();
    let planFailures = 0;
    const onPlanFailure = (params: Params, error: unknown): void => {
      planFailures++;
      const where = Object.entries(params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      const reason = error instanceof Error ? error.message : String(error);
      const message = where ? `${where}: ${reason}` : reason;
      failures.push({ scenario: scenario.name, error: message });
      options.write(`[${i + 1}/${count} ${scenario.name}] FAILED ${message}\n`);
    };
    try {
      const rows = await runScenario(scenario, {
        ...options,
        index: i + 1,
        count,
        ...(options.stopOnFailure ? {} : { onPlanFailure }),
      });
      results.push(...rows);
      if (rows.length === 0 && planFailures > 0) continue;
    } catch (error) {
      // Ctrl-C stops everything; any other failure costs this scenario only, so a long run
      // keeps what the others measured (the command still exits non-zero).
      if (options.signal.aborted || options.stopOnFailure) throw error;
      const message = error instanceof Error ? error.message : String(error);
      failures.push({ scenario: scenario.name, error: message });
      options.write(`[${i + 1}/${count} ${scenario.name}] FAILED: ${message}\n`);
      continue;
    }
    const took = formatDuration((performance.now() - t) / 1000);
    const total = formatDuration((performance.now() - t0) / 1000);
    options.write(`[${i + 1}/${count} ${scenario.name}] done in ${took} (${total} so far)\n`);
  }
  return {
    sluice: options.sluice,
    machine: options.machine,
    started,
    results,
    ...(failures.length > 0 ? { failures } : {}),
  };
}
