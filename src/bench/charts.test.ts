import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chartSpecs, renderSvg, scaleParam } from './charts.js';
import type { BenchResults, ResultRow } from './results.js';

function row(
  mode: string,
  services: number,
  median: number,
  extra: Partial<ResultRow> = {},
): ResultRow {
  return {
    scenario: 'connect',
    mode,
    params: { services, concurrency: 1 },
    metric: 'connect-rate',
    unit: 'connections/s',
    better: 'higher',
    median,
    min: median * 0.9,
    max: median * 1.1,
    runs: 3,
    ...extra,
  };
}

const results: BenchResults = {
  sluice: '0.1.0',
  machine: { kernel: '6.18', cpus: 2, cpuModel: 'Test', memGiB: 1 },
  started: '2026-11-26T00:00:00Z',
  results: [
    row('iptables', 1, 6000),
    row('iptables', 1000, 3000),
    row('sluice-socket', 1, 7000),
    row('sluice-socket', 1000, 7000),
    { ...row('sluice-tc', 1, 800), scenario: 'prog-cost', metric: 'ns', params: { case: 'hit' } },
    { ...row('sluice-tc', 1, 300), scenario: 'prog-cost', metric: 'ns', params: { case: 'miss' } },
  ],
};

describe('charts', () => {
  it('puts the numeric parameter that varies on the x axis', () => {
    assert.equal(scaleParam(results.results.slice(0, 4)), 'services');
    assert.equal(scaleParam(results.results.slice(4)), undefined);
  });

  it('draws one chart per scenario and metric, from the results alone', () => {
    const charts = chartSpecs(results);
    assert.deepEqual(
      charts.map((c) => c.file),
      ['connect-connect-rate.svg', 'prog-cost-ns.svg'],
    );
    const spec = JSON.stringify(charts[0]?.spec);
    assert.match(spec, /"type":"log"/);
    assert.match(spec, /"errorbar"/);
  });

  it('renders SVG without a browser', async () => {
    for (const c of chartSpecs(results)) {
      const svg = await renderSvg(c);
      assert.match(svg, /^<svg /);
      assert.match(svg, /sluice-socket|sluice-tc/);
    }
  });
});
