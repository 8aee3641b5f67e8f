/**
 * The one results format every benchmark writes (/work/shared/BENCH.md): DIR/results.json, one
 * row per (scenario, mode, params, metric) with median/min/max over interleaved runs. Reports
 * are rendered from this file only, so the schema here is also what the report trusts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

export const RESULTS_FILE = 'results.json';

const Better = z.enum(['higher', 'lower']);
const Params = z.record(z.string(), z.union([z.number(), z.string()]));

const Machine = z.object({
  kernel: z.string(),
  cpus: z.number().int().positive(),
  cpuModel: z.string(),
  memGiB: z.number().nonnegative(),
});

const ResultRow = z.object({
  scenario: z.string(),
  mode: z.string(),
  params: Params,
  metric: z.string(),
  unit: z.string(),
  better: Better,
  median: z.number(),
  min: z.number(),
  max: z.number(),
  runs: z.number().int().positive(),
  /** How the figures were taken (e.g. generator-cpus, measured-cpus): not part of the key. */
  notes: Params.optional(),
});

const BenchResults = z.object({
  sluice: z.string(),
  machine: Machine,
  started: z.string(),
  results: z.array(ResultRow),
  /** Scenarios that failed in this run, with the error: their rows are missing. */
  failures: z.array(z.object({ scenario: z.string(), error: z.string() })).optional(),
});

export type Better = z.infer<typeof Better>;
export type Params = z.infer<typeof Params>;
export type Machine = z.infer<typeof Machine>;
export type ResultRow = z.infer<typeof ResultRow>;
export type BenchResults = z.infer<typeof BenchResults>;

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** The median of the samples: the middle one, or the mean of the two middle ones. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] as number;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] as number) + hi) / 2;
}

/** median, min, max and count of one metric's samples (one per run). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summarize: no samples');
  for (const s of samples) {
    if (!Number.isFinite(s)) throw new RangeError(`summarize: sample ${s} is not a finite number`);
  }
  return {
    median: median(samples),
    min: Math.min(...samples),
    max: Math.max(...samples),
    runs: samples.length,
  };
}

/** The machine line of results.json. */
export function machineInfo(): Machine {
  const cpuList = cpus();
  return {
    kernel: release(),
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** An ISO 8601 UTC time to the second, as BENCH.md shows it: 2026-11-24T20:00:00Z. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Writes DIR/results.json (creating DIR) and returns its path. */
export function writeResults(dir: string, results: BenchResults): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, RESULTS_FILE);
  writeFileSync(path, `${JSON.stringify(BenchResults.parse(results), null, 2)}\n`);
  return path;
}

/** Reads and validates DIR/results.json. */
export function readResults(dir: string): BenchResults {
  const path = join(dir, RESULTS_FILE);
  return parseResults(JSON.parse(readFileSync(path, 'utf8')), path);
}

export function parseResults(data: unknown, where = RESULTS_FILE): BenchResults {
  const parsed = BenchResults.safeParse(data);
  if (!parsed.success) {
    throw new Error(`${where} is not a sluice results file: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
