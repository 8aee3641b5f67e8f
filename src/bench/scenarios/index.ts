/** Every scenario `sluice bench` knows, in the order a bare `sluice bench` runs them. */
import type { Scenario } from '../runner.js';
import { BenchError } from '../errors.js';
import { connectScenario } from './connect.js';
import { controlPlaneScenario } from './control-plane.js';
import { mapsScenario } from './maps.js';
import { maglevScenario } from './maglev.js';
import { progCostScenario } from './prog-cost.js';
import { latencyScenario } from './latency.js';
import { throughputScenario } from './throughput.js';

export const SCENARIOS: readonly Scenario[] = [
  mapsScenario,
  progCostScenario,
  controlPlaneScenario,
  connectScenario,
  latencyScenario,
  throughputScenario,
  maglevScenario,
];

export function scenarioNames(): string[] {
  return SCENARIOS.map((s) => s.name);
}

/** The named scenarios (all when none is named); throws naming any unknown one. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  if (names.length === 0) return [...SCENARIOS];
  return [...new Set(names)].map((name) => {
    const s = SCENARIOS.find((x) => x.name === name);
    if (!s) {
      throw new BenchError(`unknown scenario '${name}' (available: ${scenarioNames().join(', ')})`);
    }
    return s;
  });
}
