/**
 * SVG charts of a results.json, drawn with vega-lite and rendered by vega in Node (no browser,
 * no canvas: the SVG renderer estimates text widths). One chart per (scenario, metric): the
 * median of each mode with a min-max error bar, against the number of services (log scale) when
 * the scenario ran at several service counts, else one bar per mode for each parameter set.
 * Like the markdown report, the charts come from the results file alone.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { BenchResults, ResultRow } from './results.js';

export interface ChartSpec {
  /** File name inside the output directory, e.g. "connect-connect-rate.svg". */
  readonly file: string;
  readonly title: string;
  readonly scenario: string;
  readonly metric: string;
  readonly spec: TopLevelSpec;
}

/**
 * The x axis: the first numeric parameter that varies across the rows (services, flows, ...),
 * on a log scale; undefined when none does.
 */
export function scaleParam(rows: readonly ResultRow[]): string | undefined {
  const keys = distinct(rows.flatMap((r) => Object.keys(r.params)));
  return keys.find((k) => {
    const vs = distinct(rows.map((r) => r.params[k]));
    return vs.length > 1 && vs.every((v) => typeof v === 'number');
  });
}

function distinct<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** The parameters other than the scale, as a label ("case=hit", "" when there are none). */
function otherParams(row: ResultRow, scale: string | undefined): string {
  return Object.entries(row.params)
    .filter(([k]) => k !== scale)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** Log scale for y when the values span more than two decades, so small modes stay visible. */
function yScale(rows: readonly ResultRow[]): { type: 'log' | 'linear' } {
  const lo = Math.min(...rows.map((r) => r.min));
  const hi = Math.max(...rows.map((r) => r.max));
  return lo > 0 && hi / lo > 100 ? { type: 'log' } : { type: 'linear' };
}

function chartFor(scenario: string, metric: string, rows: readonly ResultRow[]): ChartSpec {
  const first = rows[0] as ResultRow;
  const title = `${scenario}: ${metric} (${first.unit}, ${first.better} is better)`;
  const scale = scaleParam(rows);
  const values = rows.map((r) => ({
    mode: r.mode,
    scale: scale === undefined ? undefined : r.params[scale],
    group: otherParams(r, scale) || 'all',
    median: r.median,
    min: r.min,
    max: r.max,
    runs: r.runs,
  }));
  const y = {
    field: 'median',
    type: 'quantitative' as const,
    title: `${metric} (${first.unit})`,
    scale: yScale(rows),
  };
  const color = { field: 'mode', type: 'nominal' as const, title: 'mode' };
  let spec: TopLevelSpec;
  if (scale !== undefined) {
    const groups = distinct(values.map((v) => v.group));
    const x = {
      field: 'scale',
      type: 'quantitative' as const,
      title: `${scale} (log scale)`,
      scale: { type: 'log' as const },
    };
    const layer = {
      layer: [
        { mark: { type: 'line' as const, point: true }, encoding: { x, y, color } },
        {
          mark: { type: 'errorbar' as const, ticks: true },
          encoding: {
            x,
            y: { field: 'min', type: 'quantitative' as const, title: y.title, scale: yScale(rows) },
            y2: { field: 'max' },
            color,
          },
        },
      ],
    };
    spec =
      groups.length > 1
        ? {
            title,
            data: { values },
            facet: { column: { field: 'group', type: 'nominal', title: null } },
            spec: { width: 260, height: 200, ...layer },
          }
        : { title, data: { values }, width: 420, height: 260, ...layer };
  } else {
    const x = {
      field: 'group',
      type: 'nominal' as const,
      title: null,
      axis: { labelAngle: 0 },
    };
    const xOffset = { field: 'mode', type: 'nominal' as const };
    spec = {
      title,
      data: { values },
      width: { step: 24 * distinct(values.map((v) => v.mode)).length + 16 },
      height: 220,
      layer: [
        { mark: { type: 'bar' }, encoding: { x, xOffset, y, color } },
        {
          mark: { type: 'errorbar', ticks: true },
          encoding: {
            x,
            xOffset,
            y: { field: 'min', type: 'quantitative', title: y.title, scale: yScale(rows) },
            y2: { field: 'max' },
          },
        },
      ],
    };
  }
  return { file: `${slug(scenario)}-${slug(metric)}.svg`, title, scenario, metric, spec };
}

/** The charts of a results file, in report order (scenario, then metric as first seen). */
export function chartSpecs(results: BenchResults): ChartSpec[] {
  const out: ChartSpec[] = [];
  for (const scenario of distinct(results.results.map((r) => r.scenario))) {
    const rows = results.results.filter((r) => r.scenario === scenario);
    for (const metric of distinct(rows.map((r) => r.metric))) {
      out.push(
        chartFor(
          scenario,
          metric,
          rows.filter((r) => r.metric === metric),
        ),
      );
    }
  }
  return out;
}

/** One chart as SVG text. vega is loaded on first use: every other command starts without it. */
export async function renderSvg(chart: ChartSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(chart.spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes every chart of the results into dir; returns the paths written. */
export async function writeCharts(dir: string, results: BenchResults): Promise<string[]> {
  const paths: string[] = [];
  for (const chart of chartSpecs(results)) {
    const path = join(dir, chart.file);
    writeFileSync(path, `${await renderSvg(chart)}\n`);
    paths.push(path);
  }
  return paths;
}
