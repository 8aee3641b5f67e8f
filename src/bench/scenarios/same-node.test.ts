import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { applyObjects, emptyState, parseManifestText } from '../../model/index.js';
import { toYaml } from '../lab/fleet.js';
import { runScenario } from '../runner.js';
import type { Scenario } from '../runner.js';
import { requireKernel } from '../../testing/privileges.js';
import { LATENCY, latencyScenario } from './latency.js';
import {
  ACCELERATE_ANNOTATION,
  CLIENT_POD,
  manifests,
  MAX_REDIRECTED_PACKETS,
  MODES,
  placements,
  redirectProblem,
  SERVER_POD,
  sockmapUnavailable,
} from './same-node.js';
import { THROUGHPUT, throughputScenario } from './throughput.js';

const SCENARIOS: readonly Scenario[] = [latencyScenario, throughputScenario];

describe('same-node placements', () => {
  it('puts the server on the last CPU, the client beside it or on the next CPU', () => {
    assert.deepEqual(placements(2), [
      { cpus: 'same', serverCpu: 1, clientCpu: 1 },
      { cpus: 'split', serverCpu: 1, clientCpu: 0 },
    ]);
    assert.deepEqual(placements(4, 2), [
      { cpus: 'same', serverCpu: 2, clientCpu: 2 },
      { cpus: 'split', serverCpu: 2, clientCpu: 3 },
    ]);
  });

  it('has no split placement on one CPU', () => {
    assert.deepEqual(placements(1), [{ cpus: 'same', serverCpu: 0, clientCpu: 0 }]);
  });
});

describe('same-node plans', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.name}: every placement and path in a full run, one plan with --quick`, () => {
      const full = [scenario.plan({ quick: false, cpu: 1 })].flat().map((p) => p.params);
      assert.deepEqual(
        full.map((p) => [p.cpus, p.path, p['server-cpu'], p['client-cpu']]),
        [
          ['same', 'pod', 1, 1],
          ['same', 'clusterip', 1, 1],
          ['split', 'pod', 1, 0],
          ['split', 'clusterip', 1, 0],
        ],
      );
      const quick = [scenario.plan({ quick: true, cpu: 1 })].flat().map((p) => p.params);
      assert.equal(quick.length, 1);
      assert.equal(quick[0]?.cpus, 'same');
      assert.ok((quick[0]?.seconds as number) < (full[0]?.seconds as number));
    });
  }

  it('runs sluice-sockmap exactly when the agent takes the config, and says why not', () => {
    const why = sockmapUnavailable();
    for (const scenario of SCENARIOS) {
      const expected = why === undefined ? MODES : MODES.filter((m) => m !== 'sluice-sockmap');
      assert.deepEqual(scenario.modes, expected);
    }
    if (why !== undefined) assert.match(why, /socketAcceleration/);
  });
});

describe('redirect check', () => {
  it('refuses a sluice-sockmap run whose bytes went out as packets, and only that mode', () => {
    assert.equal(redirectProblem('sluice-sockmap', 12), undefined, 'handshakes and closes');
    assert.match(
      redirectProblem('sluice-sockmap', MAX_REDIRECTED_PACKETS + 1) ?? '',
      /1001 packets left the client pod's eth0 .* not redirected/,
    );
    assert.equal(
      redirectProblem('sluice-sockmap', 50_000, 1),
      undefined,
      'a run whose connection fell back to the stack (backpressure) is the accelerated path too',
    );
    for (const mode of ['loopback', 'iptables', 'sluice-socket'] as const) {
      assert.equal(redirectProblem(mode, 50_000), undefined, mode);
    }
  });
});

describe('same-node manifests', () => {
  for (const w of [LATENCY, THROUGHPUT]) {
    it(`${w.scenario}: a valid cluster, server and client on one node, the namespace opted in`, () => {
      const docs = parseManifestText(toYaml(manifests(w)), `${w.scenario}.yaml`);
      const state = applyObjects(emptyState(), docs, { nodes: 1 });
      const server = state.pods.get(SERVER_POD);
      const client = state.pods.get(CLIENT_POD);
      assert.ok(server && client);
      assert.equal(server.nodeName, client.nodeName);
      assert.deepEqual(server.containers[0]?.command, w.serverArgv('0.0.0.0'));
      assert.equal(client.containers[0]?.command, undefined, 'the bench runs the client');
      const doc = docs.find((d) => (d.object as { kind?: string }).kind === 'Namespace');
      assert.deepEqual(
        (doc?.object as { metadata?: { annotations?: object } }).metadata?.annotations,
        { [ACCELERATE_ANNOTATION]: 'true' },
      );
    });
  }
});

describe('same-node scenarios in the lab', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.name} --quick --runs 1: a number for every available mode and metric, CPUs recorded, labs removed`, async () => {
      requireKernel();
      const rows = await runScenario(scenario, {
        quick: true,
        cpu: undefined,
        runs: 1,
        signal: new AbortController().signal,
        write: () => {},
      });
      for (const mode of scenario.modes) {
        for (const m of scenario.metrics) {
          const row = rows.find((r) => r.mode === mode && r.metric === m.name);
          assert.ok(row, `no row for ${mode} ${m.name}`);
          assert.ok(
            Number.isFinite(row.median) && row.median > 0,
            `${mode} ${m.name}: ${row.median}`,
          );
          assert.equal(typeof row.params['client-cpu'], 'number');
          assert.equal(typeof row.params['server-cpu'], 'number');
        }
      }
      const left = execFileSync('ip', ['netns', 'list']).toString();
      assert.doesNotMatch(left, /^sl-b[lp][ism][a-z0-9]*-/m, 'the benchmark labs are gone');
    });
  }
});
