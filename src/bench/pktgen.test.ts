import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BenchError } from './errors.js';
import {
  NEW_FLOW_SOURCES,
  generatorArgs,
  nsPerPacket,
  packetRate,
  parseCountLine,
  parseGenResult,
  parseNapiList,
  parseSchedstat,
} from './pktgen.js';

describe('xdp_gen output', () => {
  it('parses what send prints', () => {
    assert.deepEqual(
      parseGenResult('{"packets":262144,"seconds":1.042225,"cpu":0,"flows":"new"}\n'),
      { packets: 262144, seconds: 1.042225, cpu: 0, flows: 'new' },
    );
  });

  it('refuses output that is not a result, naming what was printed', () => {
    assert.throws(() => parseGenResult('libbpf: oops'), /xdp_gen send printed .*libbpf: oops/);
    assert.throws(() => parseGenResult(''), BenchError);
    assert.throws(() => parseGenResult('{"packets":-1,"seconds":1,"cpu":0}'), /packets/);
    assert.throws(() => parseGenResult('{"packets":5,"seconds":0,"cpu":0}'), /0 seconds/);
  });

  it('parses the counter replies of attach', () => {
    assert.equal(parseCountLine('{"packets":82112}'), 82112);
    assert.throws(() => parseCountLine('{"packets":null}'), /packets/);
  });

  it('parses the NAPI list of a device', () => {
    assert.deepEqual(parseNapiList('{"napi":[{"id":367,"pid":28297}]}'), [{ id: 367, pid: 28297 }]);
    assert.deepEqual(parseNapiList('{"napi":[]}'), []);
    assert.throws(() => parseNapiList('{"nope":1}'), /no list/);
  });

  it('reads the run time (ns) from /proc/PID/schedstat', () => {
    assert.equal(parseSchedstat('123456789 2000 17\n'), 123456789);
    assert.throws(() => parseSchedstat('x y z'), /schedstat/);
  });
});

describe('rate arithmetic', () => {
  it('packets per second over the sending time', () => {
    assert.equal(packetRate(3_000_000, 1.5), 2_000_000);
    assert.throws(() => packetRate(1, 0), BenchError);
  });

  it('CPU nanoseconds per delivered packet, never divided by zero packets', () => {
    assert.equal(nsPerPacket(2_000_000_000, 4_000_000), 500);
    assert.throws(() => nsPerPacket(1000, 0), /no packet arrived/);
  });
});

describe('generator arguments', () => {
  const a = {
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    srcIp: '198.18.0.2',
    dstIp: '198.18.0.10',
    dport: 30701,
  };

  it('steady flows come from the sender address', () => {
    const args = generatorArgs(a, 'steady');
    assert.deepEqual(args.slice(args.indexOf('--src-ip'), args.indexOf('--src-ip') + 4), [
      '--src-ip',
      '198.18.0.2',
      '--saddr-count',
      '1',
    ]);
    assert.equal(args[args.indexOf('--flows') + 1], 'steady');
  });

  it('new flows spread over the unused source range', () => {
    const args = generatorArgs(a, 'new');
    assert.equal(args[args.indexOf('--src-ip') + 1], NEW_FLOW_SOURCES.base);
    assert.equal(args[args.indexOf('--saddr-count') + 1], String(NEW_FLOW_SOURCES.count));
    assert.equal(args[args.indexOf('--dport') + 1], '30701');
  });
});
