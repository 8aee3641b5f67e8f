import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { format } from 'prettier';
import {
  formatNumber,
  percentOf,
  rangesOverlap,
  ratio,
  renderReport,
  targetStatus,
} from './report.js';
import type { BenchResults, ResultRow } from './results.js';

type Spread = Pick<ResultRow, 'median' | 'min' | 'max' | 'better'>;
const hi = (median: number, min: number, max: number): Spread => ({
  median,
  min,
  max,
  better: 'higher',
});
const lo = (median: number, min: number, max: number): Spread => ({
  median,
  min,
  max,
  better: 'lower',
});

describe('ratios', () => {
  it('is value over reference when higher is better', () => {
    assert.equal(ratio(hi(50, 45, 55), hi(200, 190, 210)), 25);
  });

  it('is reference over value when lower is better, so slower is below 100%', () => {
    // 2000 ns against 1000 ns: half as fast, not twice as good.
    assert.equal(ratio(lo(2000, 1900, 2100), lo(1000, 950, 1050)), 50);
  });

  it('says noise when the ranges overlap, however far apart the medians', () => {
    // Medians differ 2x, but one run of each lands in the other's range.
    assert.equal(ratio(hi(100, 40, 210), hi(200, 190, 220)), 'noise');
    assert.equal(rangesOverlap(hi(1, 1, 5), hi(9, 5, 10)), true, 'touching ends overlap');
    assert.equal(rangesOverlap(hi(1, 1, 4), hi(9, 5, 10)), false);
  });

  it('pairs worst and best runs the right way round for both directions', () => {
    assert.equal(percentOf(hi(50, 40, 60), hi(100, 80, 120), 'worst'), (40 / 120) * 100);
    assert.equal(percentOf(hi(50, 40, 60), hi(100, 80, 120), 'best'), (60 / 80) * 100);
    assert.equal(percentOf(lo(200, 150, 250), lo(100, 90, 110), 'worst'), (90 / 250) * 100);
    assert.equal(percentOf(lo(200, 150, 250), lo(100, 90, 110), 'best'), (110 / 150) * 100);
  });
});

describe('targets', () => {
  const ref = hi(1000, 990, 1010);
  it('is met only when even the worst pairing reaches it', () => {
    assert.equal(targetStatus(hi(600, 590, 610), ref, 50), 'met');
    // Median 52% but the worst run pairs at 48%: the spread straddles the target.
    assert.equal(targetStatus(hi(520, 485, 530), ref, 50), 'noise');
  });

  it('is not met when even the best pairing misses it', () => {
    assert.equal(targetStatus(hi(200, 190, 210), ref, 25), 'not met');
    assert.equal(targetStatus(hi(200, 190, 210), ref, 15), 'met');
  });

  it('judges lower-is-better metrics by speed, not by the raw number', () => {
    // 4000 ns against 1000 ns is 25% of the reference's speed.
    assert.equal(targetStatus(lo(4000, 3990, 4010), lo(1000, 999, 1001), 50), 'not met');
    assert.equal(targetStatus(lo(1500, 1490, 1510), lo(1000, 999, 1001), 50), 'met');
  });
});

describe('formatNumber', () => {
  it('groups thousands and keeps three digits for small values', () => {
    assert.equal(formatNumber(1234567.4), '1,234,567');
    assert.equal(formatNumber(999.5), '1,000');
    assert.equal(formatNumber(123.4), '123');
    assert.equal(formatNumber(12.345), '12.3');
    assert.equal(formatNumber(-4500), '-4,500');
    assert.equal(formatNumber(NaN), 'n/a');
  });
});

function row(mode: string, metric: string, better: 'higher' | 'lower', s: number[]): ResultRow {
  const [median, min, max] = s as [number, number, number];
  const unit = better === 'higher' ? 'entries/s' : 'ns/lookup';
  return {
    scenario: 'maps',
    mode,
    params: { entries: 1000 },
    metric,
    unit,
    better,
    median,
    min,
    max,
    runs: 5,
  };
}

// The reference is listed second on purpose: the report must still put it first.
const results: BenchResults = {
  sluice: '0.1.0+abc1234',
  machine: { kernel: '6.18.44', cpus: 2, cpuModel: 'Test CPU', memGiB: 24 },
  started: '2026-11-24T20:00:00Z',
  results: [
    row('sluice-ts', 'update-rate', 'higher', [200_000, 190_000, 210_000]),
    row('c-libbpf', 'update-rate', 'higher', [1_000_000, 990_000, 1_010_000]),
    row('sluice-ts', 'batch-update-rate', 'higher', [1_900_000, 1_500_000, 2_100_000]),
    row('c-libbpf', 'batch-update-rate', 'higher', [2_000_000, 1_950_000, 2_050_000]),
    row('sluice-ts', 'lookup-ns', 'lower', [2000, 1990, 2010]),
    row('c-libbpf', 'lookup-ns', 'lower', [1000, 990, 1010]),
    { ...row('other', 'x', 'higher', [1, 1, 1]), scenario: 'unlisted' },
  ],
};

function tableRow(md: string, metric: string, mode: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${metric} `) && l.includes(`| ${mode} `));
  assert.ok(line, `no row for ${metric} ${mode}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

describe('renderReport', () => {
  const md = renderReport(results);

  it('shows the machine line', () => {
    assert.match(md, /kernel 6\.18\.44, 2 CPUs \(Test CPU\), 24 GiB memory/);
    assert.match(md, /sluice 0\.1\.0\+abc1234/);
  });

  it('prints ratios to the reference and the issue targets', () => {
    const single = tableRow(md, 'update-rate', 'sluice-ts');
    assert.deepEqual(single.slice(-2), ['20%', '>= 25%: not met']);
    assert.deepEqual(tableRow(md, 'update-rate', 'c-libbpf').slice(-2), ['reference', '']);
    assert.equal(tableRow(md, 'lookup-ns', 'sluice-ts').at(-2), '50%');
  });

  it('refuses a ratio when the ranges overlap', () => {
    const batch = tableRow(md, 'batch-update-rate', 'sluice-ts');
    assert.equal(batch.at(-2), 'noise');
    assert.doesNotMatch(batch.join('|'), /95%/);
    // ... while the target, far below the spread, is still decided.
    assert.equal(batch.at(-1), '>= 50%: met');
  });

  it('puts the reference mode first in each metric', () => {
    const lines = md.split('\n').filter((l) => l.startsWith('| update-rate '));
    assert.match(lines[0] ?? '', /c-libbpf/);
  });

  it('renders scenarios without a reference without ratio columns', () => {
    const section = md.slice(md.indexOf('## unlisted'));
    assert.doesNotMatch(section, /\| vs /);
    assert.match(section, /\| x +\| /);
  });

  it('is already prettier-formatted markdown, so docs/ can hold it as written', async () => {
    const formatted = await format(md, { parser: 'markdown', printWidth: 100 });
    assert.equal(formatted, md);
  });

  it('is a pure function of its input', () => {
    assert.equal(renderReport(structuredClone(results)), md);
  });
});

describe('renderReport with a second reference and per-placement targets (latency)', () => {
  const lat = (mode: string, cpus: string, metric: string, s: number[]): ResultRow => {
    const [median, min, max] = s as [number, number, number];
    return {
      scenario: 'latency',
      mode,
      params: { cpus, path: 'clusterip' },
      metric,
      unit: 'µs',
      better: 'lower',
      median,
      min,
      max,
      runs: 3,
    };
  };
  const md = renderReport({
    ...results,
    results: [
      lat('loopback', 'same', 'latency-p50', [15, 14, 16]),
      lat('iptables', 'same', 'latency-p50', [22, 21, 23]),
      lat('sluice-socket', 'same', 'latency-p50', [18, 17, 19]),
      lat('sluice-sockmap', 'same', 'latency-p50', [9, 8.5, 9.5]),
      lat('sluice-socket', 'split', 'latency-p50', [40, 39, 41]),
      lat('sluice-sockmap', 'split', 'latency-p50', [30, 29, 31]),
    ],
  });
  const group = (cpus: string): string => {
    // After the heading: the seed section above also names the placements.
    const start = md.indexOf(`\`cpus=${cpus}\``, md.indexOf('## latency'));
    const end = md.indexOf('Parameters:', start + 1);
    return md.slice(start, end === -1 ? undefined : end);
  };

  it('compares every mode with the unaccelerated path and with iptables, each in its column', () => {
    assert.match(md, /\| vs sluice-socket \| vs iptables \| target +\|/);
    const same = group('same');
    assert.deepEqual(tableRow(same, 'latency-p50', 'sluice-sockmap').slice(-3), [
      '200%',
      '244%',
      '>= 150%: met',
    ]);
    assert.deepEqual(tableRow(same, 'latency-p50', 'iptables').slice(-3), ['82%', 'reference', '']);
    assert.deepEqual(tableRow(same, 'latency-p50', 'sluice-socket').slice(-3), [
      'reference',
      '122%',
      '',
    ]);
    assert.match(md, /"vs iptables" is the same ratio with iptables as the reference\./);
  });

  it('applies a target only to the placement it names, and shows - without that reference', () => {
    // cpus=split asks only for lower than unaccelerated: 133% meets >= 100%, not the 150% of same.
    assert.deepEqual(tableRow(group('split'), 'latency-p50', 'sluice-sockmap').slice(-3), [
      '133%',
      '-',
      '>= 100%: met',
    ]);
  });

  it('is still prettier-formatted markdown', async () => {
    assert.equal(await format(md, { parser: 'markdown', printWidth: 100 }), md);
  });
});

function labRow(
  scenario: string,
  mode: string,
  metric: string,
  better: 'higher' | 'lower',
  s: [number, number, number],
  extra: Partial<ResultRow> = {},
): ResultRow {
  const [median, min, max] = s;
  return {
    scenario,
    mode,
    params: { services: 1000 },
    metric,
    unit: better === 'higher' ? 'packets/s' : 'µs',
    better,
    median,
    min,
    max,
    runs: 3,
    ...extra,
  };
}

describe('renderReport: lab scenarios', () => {
  const lab: BenchResults = {
    ...results,
    results: [
      labRow('pps', 'iptables', 'pps', 'higher', [1e6, 0.9e6, 1.1e6], {
        notes: { 'generator-cpus': '1', 'measured-cpus': '0' },
      }),
      labRow('pps', 'sluice-xdp', 'pps', 'higher', [3e6, 2.9e6, 3.1e6], {
        notes: { 'generator-cpus': '1', 'measured-cpus': '0' },
      }),
      labRow('churn', 'iptables', 'failed-requests', 'lower', [3, 3, 3], { runs: 1 }),
      labRow('churn', 'sluice-socket', 'failed-requests', 'lower', [0, 0, 0], { runs: 1 }),
    ],
  };
  const md = renderReport(lab, {
    charts: true,
    chartDir: 'charts',
    scenarios: ['pps', 'churn', 'flows'],
  });

  it('compares with iptables, and states targets against other modes (pps)', () => {
    const row = tableRow(md, 'pps', 'sluice-xdp');
    assert.equal(row[8], '300%');
    assert.equal(row.at(-1), '>= 200% of sluice-tc: no sluice-tc');
  });

  it('gives no ratio from a single run', () => {
    assert.equal(tableRow(md, 'failed-requests', 'sluice-socket').at(-1), '1 run');
  });

  it('says where the generator and the measured path ran, and what was not run', () => {
    assert.match(md, /generator CPUs: 1; measured path CPUs: 0/);
    assert.match(md, /CPUs not recorded/);
    assert.match(md, /^Not run: flows\.$/m);
  });

  it("puts the seed's figures beside ours and says where we fall short", () => {
    const seed = md.slice(md.indexOf('## Against the seed'), md.indexOf('## pps'));
    assert.match(
      seed,
      /\| packets\/s, eBPF \(sluice-xdp\) +\| +9\.4 Mpps \| +7\.8x \| +3\.00 Mpps \| +3\.0x \| falls short: 3\.0x against the seed's 7\.8x/,
    );
    assert.match(seed, /no ipvs mode in the lab/);
    assert.match(seed, /latency wasn't run/);
  });

  it('links the charts of each scenario', () => {
    assert.match(md, /Charts: \[pps\]\(charts\/pps-pps\.svg\)\./);
  });

  it('is prettier-formatted', async () => {
    assert.equal(await format(md, { parser: 'markdown', printWidth: 100 }), md);
  });
});

describe('renderReport: the path ceiling of pps', () => {
  const steady = { services: 1, flows: 'steady' };
  const row = (mode: string, s: [number, number, number]): ResultRow =>
    labRow('pps', mode, 'pps', 'higher', s, { params: steady });
  const md = renderReport({
    ...results,
    results: [
      row('iptables', [50e3, 46e3, 55e3]),
      row('sluice-tc', [64e3, 62e3, 66e3]),
      row('sluice-xdp', [110e3, 100e3, 120e3]),
      row('xdp-tx', [290e3, 280e3, 300e3]),
      row('xdp-fwd', [150e3, 140e3, 160e3]),
      row('xdp-fwd-ct', [130e3, 125e3, 135e3]),
    ],
  });

  it("gives each target the tracking ceiling's own ratio, and says when it is out of reach", () => {
    const target = tableRow(md, 'pps', 'sluice-xdp').at(-1) ?? '';
    assert.match(target, /^>= 400%: not met \(xdp-fwd-ct 260%: out of reach here\)/);
    assert.match(target, /; >= 75% of xdp-tx: not met \(xdp-fwd-ct 45%: out of reach here\)/);
    assert.match(target, /; >= 75% of xdp-fwd: noise \(xdp-fwd-ct 87%\); /);
    assert.match(target, /; >= 200% of sluice-tc: not met \(xdp-fwd-ct 203%, noise\)$/);
  });

  it("shows each ceiling's ratio to every mode in its own column", () => {
    const header = md.split('\n').find((l) => l.startsWith('| metric ')) ?? '';
    assert.match(
      header,
      /\| vs iptables +\| vs sluice-tc +\| vs xdp-tx +\| vs xdp-fwd +\| vs xdp-fwd-ct +\| target +\|/,
    );
    assert.equal(tableRow(md, 'pps', 'xdp-fwd')[8], '300%');
    assert.equal(tableRow(md, 'pps', 'sluice-xdp')[11], '73%');
    assert.equal(tableRow(md, 'pps', 'sluice-xdp')[12], '85%');
  });

  it('is prettier-formatted', async () => {
    assert.equal(await format(md, { parser: 'markdown', printWidth: 100 }), md);
  });
  it('falls back to the looser ceiling in results where the tighter did not run', () => {
    const older = renderReport({
      ...results,
      results: [
        row('iptables', [50e3, 46e3, 55e3]),
        row('sluice-xdp', [110e3, 100e3, 120e3]),
        row('xdp-fwd', [150e3, 140e3, 160e3]),
      ],
    });
    const target = tableRow(older, 'pps', 'sluice-xdp').at(-1) ?? '';
    assert.match(target, /^>= 400%: not met \(xdp-fwd 300%: out of reach here\)/);
    assert.match(older, /Where xdp-fwd-ct did not run, the next of xdp-fwd that did\./);
  });
});
