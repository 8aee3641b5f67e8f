import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, cidrHost, formatIPv4, parseCidr, parseIPv4 } from './ipv4.js';

describe('ipv4', () => {
  it('parses and formats addresses', () => {
    assert.equal(parseIPv4('198.18.0.10'), 0xc612000a);
    assert.equal(formatIPv4(0xc612000a), '198.18.0.10');
    assert.equal(formatIPv4(parseIPv4('255.255.255.255')), '255.255.255.255');
    for (const bad of ['1.2.3', '1.2.3.256', 'a.b.c.d', '1.2.3.4.5', '']) {
      assert.throws(() => parseIPv4(bad), /not an IPv4 address/);
    }
  });

  it('does CIDR membership and host offsets', () => {
    assert.deepEqual(parseCidr('198.18.16.7/20'), { base: parseIPv4('198.18.16.0'), prefix: 20 });
    assert.ok(cidrContains('198.18.16.0/24', '198.18.16.255'));
    assert.ok(!cidrContains('198.18.16.0/24', '198.18.17.0'));
    assert.ok(cidrContains('0.0.0.0/0', '8.8.8.8'));
    assert.equal(cidrHost('198.18.0.0/24', 10), '198.18.0.10');
    assert.throws(() => cidrHost('198.18.0.0/24', 256), /outside/);
    assert.throws(() => parseCidr('198.18.0.0/33'), /not an IPv4 CIDR/);
    assert.throws(() => parseCidr('198.18.0.0'), /not an IPv4 CIDR/);
  });
});
