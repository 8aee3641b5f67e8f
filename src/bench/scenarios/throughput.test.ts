import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIperf3 } from './throughput.js';

/** The parts of `iperf3 -c ... -J` (3.12) the scenario reads, with their neighbours. */
const OUTPUT = JSON.stringify({
  start: { connected: [{ socket: 5 }] },
  intervals: [],
  end: {
    streams: [],
    sum_sent: {
      seconds: 1.000682,
      bytes: 2516582400,
      bits_per_second: 20118938084.2,
      retransmits: 2,
    },
    sum_received: { seconds: 1.001311, bytes: 2516582400, bits_per_second: 20106299840.9 },
  },
});

describe('iperf3 output', () => {
  it('gives what the receiver counted, in Gbit/s', () => {
    const { throughput } = parseIperf3(OUTPUT);
    assert.equal(throughput, 20106299840.9 / 1e9);
  });

  it("reports iperf3's own error", () => {
    const failed = JSON.stringify({ start: {}, end: {}, error: 'unable to connect to server' });
    assert.throws(() => parseIperf3(failed), /iperf3: unable to connect to server/);
  });

  it('refuses output without a received sum, or not JSON at all', () => {
    assert.throws(() => parseIperf3(JSON.stringify({ end: {} })), /sum_received/);
    assert.throws(() => parseIperf3('iperf3: error - unable to connect'), /no JSON/);
  });
});
