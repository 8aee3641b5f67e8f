/**
 * Scenario `latency`: same-node TCP request/response latency, sockperf ping-pong with 64-byte
 * messages, p50 and p99 of the full round trip (`--full-rtt`: one request sent until its answer
 * is read; sockperf's default would halve it). Modes, placements and paths: same-node.ts.
 */
import { BenchError } from '../errors.js';
import type { Samples } from '../runner.js';
import type { Workload } from './same-node.js';
import { sameNodeScenario } from './same-node.js';

export const SOCKPERF_PORT = 11111;
export const MESSAGE_SIZE = 64;

// sockperf colours some lines; the escapes would split the numbers from their labels.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** The round-trip percentiles (µs) sockperf ping-pong printed; throws when one is missing. */
export function parseSockperf(stdout: string): Samples {
  const text = stdout.replace(ANSI, '');
  const percentile = (p: string): number => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s*([0-9.]+)`).exec(text);
    const v = m ? Number(m[1]) : NaN;
    if (!Number.isFinite(v)) {
      const tail = text.trim().split('\n').slice(-5).join('\n');
      throw new BenchError(`sockperf printed no ${p} percentile; its output ends:\n${tail}`);
    }
    return v;
  };
  if (!/Round trip is/.test(text)) {
    throw new BenchError('sockperf did not report round-trip times (was --full-rtt given?)');
  }
  return { 'latency-p50': percentile('50.000'), 'latency-p99': percentile('99.000') };
}

export const LATENCY: Workload = {
  scenario: 'latency',
  labPrefix: 'bl',
  metrics: [
    { name: 'latency-p50', unit: 'µs', better: 'lower' },
    { name: 'latency-p99', unit: 'µs', better: 'lower' },
  ],
  port: SOCKPERF_PORT,
  params: { 'message-bytes': MESSAGE_SIZE, latency: 'round-trip' },
  serverArgv: (address) => [
    'sockperf',
    'server',
    '--tcp',
    '-i',
    address,
    '-p',
    String(SOCKPERF_PORT),
  ],
  clientArgv: (ip, port, seconds) => [
    'sockperf',
    'ping-pong',
    '--tcp',
    '-i',
    ip,
    '-p',
    String(port),
    '-m',
    String(MESSAGE_SIZE),
    '-t',
    String(seconds),
    '--full-rtt',
  ],
  parse: parseSockperf,
  seconds: { full: 3, quick: 1 },
};

export const latencyScenario = sameNodeScenario(LATENCY);
