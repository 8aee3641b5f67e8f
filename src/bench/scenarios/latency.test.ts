import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSockperf } from './latency.js';

/** sockperf 3.7 `ping-pong --tcp -m 64 -t 1 --full-rtt`, as printed (colour escapes included). */
const OUTPUT = `sockperf: \u001b[2;35m== version #3.7-no.git == \u001b[0m
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)

[ 0] IP = 127.0.0.1       PORT = 17311 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; SentMessages=59091; ReceivedMessages=59090
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.551 sec; SentMessages=30369; ReceivedMessages=30369
sockperf: \u001b[2;35m====> avg-rtt=18.092 (std-dev=40.046)\u001b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Round trip is 18.092 usec
sockperf: \u001b[2;35mTotal 30369 observations\u001b[0m; each percentile contains 303.69 observations
sockperf: ---> <MAX> observation = 3370.171
sockperf: ---> percentile 99.999 = 3370.171
sockperf: ---> percentile 99.990 = 1835.769
sockperf: ---> percentile 99.900 =  348.766
sockperf: ---> percentile 99.000 =   44.365
sockperf: ---> percentile 90.000 =   18.597
sockperf: ---> percentile 75.000 =   17.826
sockperf: ---> percentile 50.000 =   16.925
sockperf: ---> percentile 25.000 =   14.241
sockperf: ---> <MIN> observation =   13.289
`;

describe('sockperf output', () => {
  it('gives the 50th and 99th round-trip percentiles in µs, not 99.9 or 99.99', () => {
    assert.deepEqual(parseSockperf(OUTPUT), { 'latency-p50': 16.925, 'latency-p99': 44.365 });
  });

  it('refuses half round trips (sockperf without --full-rtt)', () => {
    const halved = OUTPUT.replace('Round trip is', 'Latency is');
    assert.throws(() => parseSockperf(halved), /round-trip/);
  });

  it('names the missing percentile and shows the end of the output', () => {
    const cut = OUTPUT.replace(/^.*percentile 50\.000.*$/m, '');
    assert.throws(() => parseSockperf(cut), /no 50\.000 percentile.*\n[\s\S]*<MIN> observation/);
    assert.throws(() => parseSockperf('sockperf: connect: Connection refused\n'), /sockperf/);
  });
});
