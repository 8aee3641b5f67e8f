/**
 * The markdown report, rendered from results.json and nothing else (BENCH.md). Pure: the same
 * results give the same text, and the text is already in prettier's markdown form, so a
 * rendered report can be checked in under docs/ as it is.
 */
import type { BenchResults, ResultRow } from './results.js';

/** A goal from the issue: `mode` reaches at least `percent` of the reference on `metric`. */
export interface Target {
  readonly mode: string;
  readonly metric: string;
  readonly percent: number;
  /** Only in the groups whose params include these (e.g. `{ cpus: 'same' }`). */
  readonly params?: ResultRow['params'];
}

export interface Comparison {
  /** The mode every other mode of the scenario is compared with. */
  readonly reference: string;
  readonly targets: readonly Target[];
  /** More modes every mode is also compared with, each in its own column (no targets). */
  readonly also?: readonly string[];
}

/** What each scenario is compared against. Scenarios not listed get no ratio column. */
export const COMPARISONS: Readonly<Record<string, Comparison>> = {
  maps: {
    reference: 'c-libbpf',
    targets: [
      { mode: 'sluice-ts', metric: 'update-rate', percent: 25 },
      { mode: 'sluice-ts', metric: 'batch-update-rate', percent: 50 },
    ],
  },
  // kube-proxy's iptables mode is the baseline every lab scenario is measured against.
  connect: { reference: 'iptables', targets: [] },
  // Issue 11: socket redirect against the same path unaccelerated, and against kube-proxy.
  latency: {
    reference: 'sluice-socket',
    also: ['iptables'],
    targets: [
      { mode: 'sluice-sockmap', metric: 'latency-p50', percent: 150, params: { cpus: 'same' } },
      { mode: 'sluice-sockmap', metric: 'latency-p50', percent: 100, params: { cpus: 'split' } },
      { mode: 'sluice-sockmap', metric: 'latency-p99', percent: 100, params: { cpus: 'split' } },
    ],
  },
  throughput: {
    reference: 'sluice-socket',
    also: ['iptables'],
    targets: [{ mode: 'sluice-sockmap', metric: 'throughput', percent: 120 }],
  },
};

function appliesTo(target: Target, params: ResultRow['params']): boolean {
  return Object.entries(target.params ?? {}).every(([k, v]) => params[k] === v);
}

type Spread = Pick<ResultRow, 'median' | 'min' | 'max' | 'better'>;

/** Do the min-max ranges of two rows overlap? Then the spread is larger than the effect. */
export function rangesOverlap(a: Spread, b: Spread): boolean {
  return a.min <= b.max && b.min <= a.max;
}

/**
 * A row's performance as a percentage of the reference's, oriented so that above 100 is always
 * better: value/reference for higher-is-better metrics, reference/value for lower-is-better.
 * `median` compares medians; `worst` the row's worst run with the reference's best; `best` the
 * other way round.
 */
export function percentOf(
  row: Spread,
  ref: Spread,
  pairing: 'median' | 'worst' | 'best' = 'median',
): number {
  const higher = row.better === 'higher';
  const [mine, theirs] =
    pairing === 'median'
      ? [row.median, ref.median]
      : (pairing === 'worst') === higher
        ? [row.min, ref.max]
        : [row.max, ref.min];
  return (higher ? mine / theirs : theirs / mine) * 100;
}

/** The ratio to print: a percentage, or 'noise' when the ranges overlap. */
export function ratio(row: Spread, ref: Spread): number | 'noise' {
  return rangesOverlap(row, ref) ? 'noise' : percentOf(row, ref);
}

export type TargetStatus = 'met' | 'not met' | 'noise';

/**
 * Met when even the worst pairing of runs reaches the target, not met when even the best
 * pairing misses it, noise when the spread straddles it.
 */
export function targetStatus(row: Spread, ref: Spread, percent: number): TargetStatus {
  if (percentOf(row, ref, 'worst') >= percent) return 'met';
  if (percentOf(row, ref, 'best') < percent) return 'not met';
  return 'noise';
}

/** 1234567 -> "1,234,567"; small values keep three significant digits. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) < 100) return String(Number(x.toPrecision(3)));
  const [sign, digits] = x < 0 ? ['-', String(Math.round(-x))] : ['', String(Math.round(x))];
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function formatPercent(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  return `${p < 10 ? p.toFixed(1) : Math.round(p)}%`;
}

type Align = 'left' | 'right';

/** A markdown table laid out exactly as prettier lays it out. */
export function markdownTable(
  header: readonly string[],
  align: readonly Align[],
  rows: readonly (readonly string[])[],
): string {
  const escape = (s: string): string => s.replace(/\|/g, '\\|');
  const cells = [header, ...rows].map((r) => r.map(escape));
  const widths = header.map((_, c) => Math.max(3, ...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string =>
    `| ${widths
      .map((w, c) => {
        const s = r[c] ?? '';
        return align[c] === 'right' ? s.padStart(w) : s.padEnd(w);
      })
      .join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (align[c] === 'right' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), rule, ...body.map(line)].join('\n');
}

/** Distinct values in first-seen order. */
function distinct<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function paramsKey(params: ResultRow['params']): string {
  return JSON.stringify(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function paramsText(params: ResultRow['params']): string {
  const entries = Object.entries(params);
  if (entries.length === 0) return 'Parameters: none.';
  return `Parameters: ${entries.map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`;
}

function renderGroup(rows: readonly ResultRow[], comparison: Comparison | undefined): string {
  const modes = distinct(rows.map((r) => r.mode));
  if (comparison && modes.includes(comparison.reference)) {
    modes.splice(modes.indexOf(comparison.reference), 1);
    modes.unshift(comparison.reference);
  }
  const header = ['metric', 'unit', 'better', 'mode', 'median', 'min', 'max', 'runs'];
  const align: Align[] = ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'right'];
  const also = comparison?.also ?? [];
  if (comparison) {
    header.push(`vs ${comparison.reference}`, ...also.map((m) => `vs ${m}`), 'target');
    align.push('right', ...also.map((): Align => 'right'), 'left');
  }
  const body: string[][] = [];
  for (const metric of distinct(rows.map((r) => r.metric))) {
    const ref = comparison
      ? rows.find((r) => r.metric === metric && r.mode === comparison.reference)
      : undefined;
    for (const mode of modes) {
      const row = rows.find((r) => r.metric === metric && r.mode === mode);
      if (!row) continue;
      const cells = [
        row.metric,
        row.unit,
        row.better,
        row.mode,
        formatNumber(row.median),
        formatNumber(row.min),
        formatNumber(row.max),
        String(row.runs),
      ];
      if (comparison) {
        let targetCell = '';
        if (row === ref) {
          cells.push('reference');
        } else if (!ref) {
          cells.push('-');
        } else {
          const r = ratio(row, ref);
          const target = comparison.targets.find(
            (t) => t.mode === mode && t.metric === metric && appliesTo(t, row.params),
          );
          cells.push(r === 'noise' ? 'noise' : formatPercent(r));
          if (target)
            targetCell = `>= ${target.percent}%: ${targetStatus(row, ref, target.percent)}`;
        }
        for (const other of also) {
          const o = rows.find((r) => r.metric === metric && r.mode === other);
          const r = o && o !== row ? ratio(row, o) : undefined;
          cells.push(
            o === row
              ? 'reference'
              : r === undefined
                ? '-'
                : r === 'noise'
                  ? 'noise'
                  : formatPercent(r),
          );
        }
        cells.push(targetCell);
      }
      body.push(cells);
    }
  }
  return markdownTable(header, align, body);
}

function explainComparison(reference: string): string {
  return [
    `"vs ${reference}" is each mode's median as a percentage of ${reference}'s, oriented so that`,
    `above 100% is better (for lower-is-better metrics, ${reference}'s median over the mode's).`,
    `"noise" means the two modes' min-max ranges overlap: the spread between runs is larger than`,
    'the difference, so no ratio is given. A target is met when even the worst pairing of runs',
    "(the mode's worst against the reference's best) reaches it, not met when even the best",
    'pairing misses it, and noise otherwise.',
  ].join('\n');
}

export interface ReportOptions {
  /** The top heading (default "sluice benchmark report"). */
  readonly title?: string;
  /** A paragraph after the heading. */
  readonly preface?: string;
}

/** The markdown report of a results.json. */
export function renderReport(results: BenchResults, options: ReportOptions = {}): string {
  const { machine } = results;
  const out: string[] = [`# ${options.title ?? 'sluice benchmark report'}`];
  if (options.preface) out.push(options.preface);
  out.push(
    [
      `Machine: kernel ${machine.kernel}, ${machine.cpus} CPUs (${machine.cpuModel}),`,
      `${machine.memGiB} GiB memory. sluice ${results.sluice}, started ${results.started}.`,
    ].join(' '),
  );
  if (results.results.length === 0) out.push('No results.');
  for (const scenario of distinct(results.results.map((r) => r.scenario))) {
    const comparison = COMPARISONS[scenario];
    const rows = results.results.filter((r) => r.scenario === scenario);
    out.push(`## ${scenario}`);
    for (const key of distinct(rows.map((r) => paramsKey(r.params)))) {
      const group = rows.filter((r) => paramsKey(r.params) === key);
      out.push(paramsText(group[0]?.params ?? {}), renderGroup(group, comparison));
    }
    if (comparison) out.push(explainComparison(comparison.reference));
    for (const other of comparison?.also ?? []) {
      out.push(`"vs ${other}" is the same ratio with ${other} as the reference.`);
    }
  }
  return `${out.join('\n\n')}\n`;
}
