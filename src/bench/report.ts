/**
 * The markdown report, rendered from results.json and nothing else (BENCH.md). Pure: the same
 * results give the same text, and the text is already in prettier's markdown form, so a
 * rendered report can be checked in under docs/ as it is.
 */
import { chartSpecs } from './charts.js';
import type { BenchResults, Params, ResultRow } from './results.js';
import { NOTE } from './runner.js';

/** A goal from the issue: `mode` reaches at least `percent` of the reference on `metric`. */
export interface Target {
  readonly mode: string;
  readonly metric: string;
  readonly percent: number;
  /** Only in the groups whose params include these (e.g. `{ cpus: 'same' }`). */
  readonly params?: ResultRow['params'];
  /** The mode the percentage is of, when not the comparison's reference (e.g. a ceiling). */
  readonly against?: string;
}

export interface Comparison {
  /** The mode every other mode of the scenario is compared with. */
  readonly reference: string;
  readonly targets: readonly Target[];
  /** More modes every mode is also compared with, each in its own column (no targets). */
  readonly also?: readonly string[];
  /**
   * The modes that bound what any mode can reach where they ran (ceilings), tightest first: each
   * target's cell also gives the first of them that ran in its group, its own percentage of
   * the same reference, and says "out of reach here" when even the ceiling's best pairing of
   * runs falls short of the target. (Results from before a tighter ceiling existed keep the
   * looser one.)
   */
  readonly ceilings?: readonly string[];
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
  // Issue 5: at 10k services, new connections through a ClusterIP at least 2x faster (p50).
  connect: {
    reference: 'iptables',
    targets: [
      {
        mode: 'sluice-socket',
        metric: 'connect-latency-p50',
        percent: 200,
        params: { services: 10000 },
      },
    ],
  },
  // Issue 5: programming 10k services at least 20x faster than kube-proxy's iptables-restore.
  'control-plane': {
    reference: 'iptables',
    targets: [
      { mode: 'sluice-ts', metric: 'program-time', percent: 2000, params: { services: 10000 } },
    ],
  },
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
  // Issue 10: sluice XDP against kube-proxy (the seed's 9.4/1.2 Mpps), the machine's XDP_TX
  // ceiling and sluice's own TC path. "No drop from 1 to 10k services" spans two groups: see
  // docs/pps.md. xdp-tx is the interface's ceiling (its frames go straight back out); xdp-fwd
  // the path's (the least a NodePort forwarder does, its frames taking sluice-xdp's path to the
  // backend), and 75% of it is the steady target's reading on the real path; xdp-fwd-ct the
  // path's for a forwarder that tracks connections, as the issue's conntrack shared between XDP
  // and TC must (xdp-fwd plus a lookup per packet and an entry per new flow): no such program
  // at node 0 delivers more on this path, so its own ratio bounds every sluice target's here.
  pps: {
    reference: 'iptables',
    also: ['sluice-tc', 'xdp-tx', 'xdp-fwd', 'xdp-fwd-ct'],
    ceilings: ['xdp-fwd-ct', 'xdp-fwd'],
    targets: [
      { mode: 'sluice-xdp', metric: 'pps', percent: 800, params: { flows: 'new' } },
      { mode: 'sluice-xdp', metric: 'pps', percent: 400, params: { flows: 'steady' } },
      {
        mode: 'sluice-xdp',
        metric: 'pps',
        percent: 75,
        params: { flows: 'steady' },
        against: 'xdp-tx',
      },
      {
        mode: 'sluice-xdp',
        metric: 'pps',
        percent: 75,
        params: { flows: 'steady' },
        against: 'xdp-fwd',
      },
      { mode: 'sluice-xdp', metric: 'pps', percent: 200, against: 'sluice-tc' },
      // The same XDP path forwarding by DSR (lb.mode dsr): no SNAT port per new flow, so no
      // ~64.5k new flows/s cap with one backend (docs/pps.md).
      { mode: 'sluice-xdp-dsr', metric: 'pps', percent: 800, params: { flows: 'new' } },
    ],
  },
};

function appliesTo(target: Target, params: ResultRow['params']): boolean {
  return Object.entries(target.params ?? {}).every(([k, v]) => params[k] === v);
}

/** The baseline of scenarios not listed in COMPARISONS, when they ran it. */
export const DEFAULT_REFERENCE = 'iptables';

/** How a scenario's rows are compared: as COMPARISONS says, else against iptables if it ran. */
export function comparisonOf(
  scenario: string,
  rows: readonly Pick<ResultRow, 'mode'>[],
): Comparison | undefined {
  const listed = COMPARISONS[scenario];
  if (listed) return listed;
  return rows.some((r) => r.mode === DEFAULT_REFERENCE)
    ? { reference: DEFAULT_REFERENCE, targets: [] }
    : undefined;
}

type Spread = Pick<ResultRow, 'median' | 'min' | 'max' | 'better'> & { runs?: number };

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

/**
 * The ratio to print: a percentage; 'noise' when the ranges overlap; '1 run' when either side
 * has a single run, so its spread is unknown and the ratio cannot be told from noise.
 */
export function ratio(row: Spread, ref: Spread): number | 'noise' | '1 run' {
  if ((row.runs ?? 2) < 2 || (ref.runs ?? 2) < 2) return '1 run';
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
  const targets = (comparison?.targets.length ?? 0) > 0;
  if (comparison) {
    header.push(`vs ${comparison.reference}`, ...also.map((m) => `vs ${m}`));
    align.push('right', ...also.map((): Align => 'right'));
  }
  if (targets) {
    header.push('target');
    align.push('left');
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
          cells.push('no reference');
        } else {
          const r = ratio(row, ref);
          cells.push(typeof r === 'string' ? r : formatPercent(r));
        }
        targetCell = comparison.targets
          .filter((t) => t.mode === mode && t.metric === metric && appliesTo(t, row.params))
          .map((t) => {
            const of = t.against
              ? rows.find((r) => r.metric === metric && r.mode === t.against)
              : ref;
            const what = t.against ? ` of ${t.against}` : '';
            if (!of || of === row) return `>= ${t.percent}%${what}: no ${t.against ?? 'reference'}`;
            const status = `>= ${t.percent}%${what}: ${targetStatus(row, of, t.percent)}`;
            const ceiling = (comparison.ceilings ?? [])
              .map((c) => rows.find((r) => r.metric === metric && r.mode === c))
              .find((r) => r !== undefined);
            if (!ceiling || ceiling === of || ceiling === row) return status;
            return `${status} (${ceilingReach(ceiling, of, t.percent)})`;
          })
          .join('; ');
        for (const other of also) {
          const o = rows.find((r) => r.metric === metric && r.mode === other);
          const r = o && o !== row ? ratio(row, o) : undefined;
          cells.push(
            o === row
              ? 'reference'
              : r === undefined
                ? '-'
                : typeof r === 'string'
                  ? r
                  : formatPercent(r),
          );
        }
        cells.push(targetCell);
      }
      body.push(cells.slice(0, header.length));
    }
  }
  return markdownTable(header, align, body);
}

/** What the ceiling itself reaches of a target's reference: the bound on every mode's ratio. */
export function ceilingReach(
  ceiling: Spread & { mode: string },
  of: Spread,
  percent: number,
): string {
  const reach = `${ceiling.mode} ${formatPercent(percentOf(ceiling, of))}`;
  const status = targetStatus(ceiling, of, percent);
  if (status === 'not met') return `${reach}: out of reach here`;
  return status === 'noise' ? `${reach}, noise` : reach;
}

function explainComparison(comparison: Comparison): string {
  const { reference } = comparison;
  const lines = [
    `"vs ${reference}" is each mode's median as a percentage of ${reference}'s, oriented so that`,
    `above 100% is better (for lower-is-better metrics, ${reference}'s median over the mode's).`,
    `"noise" means the two modes' min-max ranges overlap: the spread between runs is larger than`,
    'the difference, so no ratio is given. "1 run" means a side ran once: its spread is unknown,',
    'so no ratio is given.',
  ];
  if (comparison.targets.length > 0) {
    lines.push(
      "A target is met when even the worst pairing of runs (the mode's worst against the",
      "reference's best) reaches it, not met when even the best pairing misses it, and noise",
      'otherwise.',
    );
  }
  const [ceiling, ...looser] = comparison.ceilings ?? [];
  if (ceiling) {
    lines.push(
      `In parentheses: the ceiling ${ceiling}'s own median percentage of the same reference, the`,
      'most any mode can reach here; "out of reach here" when even its best pairing of runs',
      'misses the target, "noise" when its own spread straddles the target.',
    );
    if (looser.length > 0) {
      lines.push(`Where ${ceiling} did not run, the next of ${looser.join(', ')} that did.`);
    }
  }
  return lines.join('\n');
}

/** What each known scenario measures, printed under its heading. */
export const SCENARIO_SUMMARIES: Readonly<Record<string, string>> = {
  maps: 'Map programming throughput from C (libbpf) and from TypeScript, same object and work.',
  'prog-cost':
    "ns/packet of the TC and XDP load balancers by BPF_PROG_TEST_RUN, per case; XDP beside two floors: a program that only returns XDP_PASS, and one that only makes a new flow's two conntrack inserts (xdp-hit notes its cost over each, x-<floor>).",
  'control-plane': 'Time to program N services into an empty datapath, and to carry one change.',
  connect: 'New TCP connections through a ClusterIP by a C client: rate and latency.',
  pps: '64-byte UDP packets to a NodePort from outside, counted at the backend.',
  latency: 'TCP request/response latency through a ClusterIP.',
  throughput: 'Bulk TCP throughput through a ClusterIP.',
  flows:
    "Conntrack memory with N tracked flows, sluice's ct4 map against the kernel's nf_conntrack entries (iptables, primed with conntrack -R); and sluice's conntrack hit cost per packet (no comparable per-packet figure exists for nf_conntrack).",
  churn:
    'Requests that fail while the endpoints of their service change at a target rate under load (backends keep serving: failures come from the proxy update); changes-per-s is the rate reached.',
  memory:
    'Resident memory of the sluice agent and kernel memory of its BPF maps per scale; sluice only (the lab runs no kube-proxy process to compare).',
  scale: 'End-to-end time to program N services, and new-connection latency with them.',
};

/** Where the generator and the measured path ran, and any other notes, of a group of rows. */
function notesText(rows: readonly ResultRow[]): string {
  const describe = (notes: Params | undefined): string => {
    const n = { ...notes };
    const parts: string[] = [];
    const gen = n[NOTE.generatorCpus];
    const measured = n[NOTE.measuredCpus];
    delete n[NOTE.generatorCpus];
    delete n[NOTE.measuredCpus];
    parts.push(
      gen === undefined && measured === undefined
        ? 'CPUs not recorded (not pinned)'
        : `generator CPUs: ${gen ?? 'not recorded'}; measured path CPUs: ${measured ?? 'not recorded'}`,
    );
    for (const [k, v] of Object.entries(n)) parts.push(`\`${k}=${v}\``);
    return parts.join(', ');
  };
  const modes = distinct(rows.map((r) => r.mode));
  const perMode = modes.map((m) => describe(rows.find((r) => r.mode === m)?.notes));
  if (distinct(perMode).length === 1) return `Ran with: ${perMode[0] ?? ''}.`;
  return `Ran with: ${modes.map((m, i) => `${m}: ${perMode[i] ?? ''}`).join('; ')}.`;
}

/** The seed's figures (the issue): what sluice is measured against beyond kube-proxy. */
export const SEED = {
  pps: { iptables: 1.2e6, ipvs: 4.1e6, ebpf: 9.4e6 },
  latencyUs: { iptables: 56, ebpf: 8 },
} as const;

interface SeedPair {
  params: Params;
  reference: ResultRow;
  best: ResultRow;
}

/**
 * iptables and the best sluice mode on one metric, from the parameter set with the most
 * services where both ran (the seed's claims are about large clusters).
 */
function seedPair(
  rows: readonly ResultRow[],
  scenario: string,
  metric: (r: ResultRow) => boolean,
): SeedPair | undefined {
  const mine = rows.filter((r) => r.scenario === scenario && metric(r));
  const keys = distinct(mine.map((r) => paramsKey(r.params)));
  const scale = (k: string): number => {
    const v = mine.find((r) => paramsKey(r.params) === k)?.params.services;
    return typeof v === 'number' ? v : 0;
  };
  keys.sort((a, b) => scale(b) - scale(a));
  for (const key of keys) {
    const group = mine.filter((r) => paramsKey(r.params) === key);
    const reference = group.find((r) => r.mode === DEFAULT_REFERENCE);
    const sluice = group.filter((r) => r.mode.startsWith('sluice-'));
    if (!reference || sluice.length === 0) continue;
    const best = sluice.reduce((a, b) =>
      percentOf(b, reference) > percentOf(a, reference) ? b : a,
    );
    return { params: reference.params, reference, best };
  }
  return undefined;
}

function times(x: number): string {
  return `${x < 10 ? x.toFixed(1) : Math.round(x)}x`;
}

/** A verdict on our ratio against the seed's: short of it, or reaching it, or noise. */
function seedVerdict(pair: SeedPair, seedRatio: number): string {
  const r = ratio(pair.best, pair.reference);
  if (r === 'noise')
    return `noise: ${pair.best.mode} and iptables overlap; we fall short of the seed's ${times(seedRatio)}`;
  if (r === '1 run') return `1 run: spread unknown, no verdict`;
  const ours = r / 100;
  return ours >= seedRatio
    ? `reaches the seed's ${times(seedRatio)}`
    : `falls short: ${times(ours)} against the seed's ${times(seedRatio)}`;
}

function seedSection(results: BenchResults): string {
  const rows = results.results;
  const out: string[] = [
    '## Against the seed',
    [
      "The seed's figures are iptables 1.2 Mpps, ipvs 4.1 Mpps and eBPF 9.4 Mpps, and 56 µs",
      'of latency with iptables against 8 µs with eBPF. Absolute figures depend on the machine,',
      "so the comparison is of ratios to iptables measured in the same run; sluice's is its best",
      'mode, at the largest service count both ran.',
    ].join('\n'),
  ];
  const body: string[][] = [];
  const pps = seedPair(rows, 'pps', (r) => r.metric === 'pps');
  const seedPps = SEED.pps;
  if (!pps) {
    const ran = rows.some((r) => r.scenario === 'pps');
    const why = ran ? 'pps ran without iptables and a sluice mode side by side' : "pps wasn't run";
    body.push(['packets/s, iptables', '1.2 Mpps', '1x', why, '', '']);
    body.push([
      'packets/s, ipvs',
      '4.1 Mpps',
      times(seedPps.ipvs / seedPps.iptables),
      'no ipvs mode in the lab',
      '',
      '',
    ]);
    body.push(['packets/s, eBPF', '9.4 Mpps', times(seedPps.ebpf / seedPps.iptables), why, '', '']);
  } else {
    const mpps = (x: number): string => `${(x / 1e6).toPrecision(3)} Mpps`;
    const r = ratio(pps.best, pps.reference);
    body.push(['packets/s, iptables', '1.2 Mpps', '1x', mpps(pps.reference.median), '1x', '']);
    body.push([
      'packets/s, ipvs',
      '4.1 Mpps',
      times(seedPps.ipvs / seedPps.iptables),
      'no ipvs mode in the lab',
      '',
      '',
    ]);
    body.push([
      `packets/s, eBPF (${pps.best.mode})`,
      '9.4 Mpps',
      times(seedPps.ebpf / seedPps.iptables),
      mpps(pps.best.median),
      typeof r === 'string' ? r : times(r / 100),
      seedVerdict(pps, seedPps.ebpf / seedPps.iptables),
    ]);
  }
  const lat = seedPair(rows, 'latency', (r) => r.better === 'lower' && /p50/.test(r.metric));
  const seedLat = SEED.latencyUs;
  if (!lat) {
    const ran = rows.some((r) => r.scenario === 'latency');
    const why = ran
      ? 'latency ran without iptables and a sluice mode side by side'
      : "latency wasn't run";
    body.push(['latency, iptables', '56 µs', '1x', why, '', '']);
    body.push(['latency, eBPF', '8 µs', times(seedLat.iptables / seedLat.ebpf), why, '', '']);
  } else {
    const r = ratio(lat.best, lat.reference);
    const us = (row: ResultRow): string => `${formatNumber(row.median)} ${row.unit}`;
    body.push([
      `latency (${lat.reference.metric}), iptables`,
      '56 µs',
      '1x',
      us(lat.reference),
      '1x',
      '',
    ]);
    body.push([
      `latency (${lat.best.metric}), eBPF (${lat.best.mode})`,
      '8 µs',
      times(seedLat.iptables / seedLat.ebpf),
      us(lat.best),
      typeof r === 'string' ? r : times(r / 100),
      seedVerdict(lat, seedLat.iptables / seedLat.ebpf),
    ]);
  }
  out.push(
    markdownTable(
      ['figure', 'seed', 'seed vs iptables', 'ours', 'ours vs iptables', 'verdict'],
      ['left', 'right', 'right', 'right', 'right', 'left'],
      body,
    ),
  );
  const params = [pps, lat]
    .filter((p): p is SeedPair => p !== undefined)
    .map((p) => `${p.reference.scenario}: ${paramsText(p.params).replace(/^Parameters: /, '')}`);
  if (params.length > 0) out.push(`Measured at ${params.join('; ')}`);
  return out.join('\n\n');
}

export interface ReportOptions {
  /** The top heading (default "sluice benchmark report"). */
  readonly title?: string;
  /** A paragraph after the heading. */
  readonly preface?: string;
  /** Link the charts (chartSpecs) from each scenario; their files are in chartDir. */
  readonly charts?: boolean;
  /** The charts' directory relative to the report (default: beside it). */
  readonly chartDir?: string;
  /** Every scenario sluice bench knows: those absent from the results are named as not run. */
  readonly scenarios?: readonly string[];
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
  const ran = distinct(results.results.map((r) => r.scenario));
  const absent = (options.scenarios ?? []).filter((s) => !ran.includes(s));
  const failed = results.failures ?? [];
  for (const f of failed)
    out.push(`**${f.scenario} failed** in this run: ${f.error.split('\n')[0] ?? ''}`);
  const notRun = absent.filter((s) => !failed.some((f) => f.scenario === s));
  if (notRun.length > 0) out.push(`Not run: ${notRun.join(', ')}.`);
  out.push(seedSection(results));
  const charts = options.charts ? chartSpecs(results) : [];
  const dir = options.chartDir ? `${options.chartDir.replace(/\/$/, '')}/` : '';
  for (const scenario of ran) {
    const rows = results.results.filter((r) => r.scenario === scenario);
    const comparison = comparisonOf(scenario, rows);
    out.push(`## ${scenario}`);
    const summary = SCENARIO_SUMMARIES[scenario];
    if (summary) out.push(summary);
    for (const key of distinct(rows.map((r) => paramsKey(r.params)))) {
      const group = rows.filter((r) => paramsKey(r.params) === key);
      out.push(
        [paramsText(group[0]?.params ?? {}), notesText(group)].join(' '),
        renderGroup(group, comparison),
      );
    }
    if (comparison) out.push(explainComparison(comparison));
    const mine = charts.filter((c) => c.scenario === scenario);
    if (mine.length > 0) {
      out.push(`Charts: ${mine.map((c) => `[${c.metric}](${dir}${c.file})`).join(', ')}.`);
    }
    for (const other of comparison?.also ?? []) {
      out.push(`"vs ${other}" is the same ratio with ${other} as the reference.`);
    }
  }
  return `${out.join('\n\n')}\n`;
}
