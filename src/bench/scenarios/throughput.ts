/**
 * Scenario `throughput`: same-node TCP bulk transfer, iperf3 with one stream, client to server,
 * in Gbit/s as the receiver counted it. Full runs leave out the first second (`-O 1`, slow
 * start). Modes, placements and paths: same-node.ts.
 */
import { BenchError } from '../errors.js';
import type { Samples } from '../runner.js';
import type { Workload } from './same-node.js';
import { sameNodeScenario } from './same-node.js';

export const IPERF3_PORT = 5201;
/** Runs at least this long leave out their first second. */
const OMIT_FROM_SECONDS = 3;

interface Iperf3Json {
  error?: string;
  end?: { sum_received?: { bits_per_second?: number } };
}

/** The received rate (Gbit/s) of `iperf3 -J`; throws on an error report or a missing sum. */
export function parseIperf3(stdout: string): Samples {
  let json: Iperf3Json;
  try {
    json = JSON.parse(stdout) as Iperf3Json;
  } catch {
    throw new BenchError(`iperf3 printed no JSON: ${stdout.trim().slice(0, 200)}`);
  }
  if (json.error) throw new BenchError(`iperf3: ${json.error}`);
  const bps = json.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number' || !Number.isFinite(bps)) {
    throw new BenchError('iperf3 reported no end.sum_received.bits_per_second');
  }
  return { throughput: bps / 1e9 };
}

export const THROUGHPUT: Workload = {
  scenario: 'throughput',
  labPrefix: 'bp',
  metrics: [{ name: 'throughput', unit: 'Gbit/s', better: 'higher' }],
  port: IPERF3_PORT,
  params: { streams: 1 },
  serverArgv: (address) => ['iperf3', '--server', '--bind', address, '--port', String(IPERF3_PORT)],
  clientArgv: (ip, port, seconds) => [
    'iperf3',
    '--client',
    ip,
    '--port',
    String(port),
    '--time',
    String(seconds),
    ...(seconds >= OMIT_FROM_SECONDS ? ['--omit', '1'] : []),
    '--json',
  ],
  parse: parseIperf3,
  seconds: { full: 3, quick: 1 },
};

export const throughputScenario = sameNodeScenario(THROUGHPUT);
