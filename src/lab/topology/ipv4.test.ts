import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, cidrHost, parseCidr } from './ipv4.js';

describe('lab address helpers', () => {
  it('does CIDR membership and host offsets', () => {
    assert.deepEqual(parseCidr('198.18.16.0/20'), { network: 0xc6121000, prefix: 20 });
    assert.ok(cidrContains('198.18.16.0/24', '198.18.16.255'));
    assert.ok(!cidrContains('198.18.16.0/24', '198.18.17.0'));
    assert.ok(cidrContains('0.0.0.0/0', '8.8.8.8'));
    assert.equal(cidrHost('198.18.0.0/24', 10), '198.18.0.10');
  });

  it('names the bad text in a LabError', () => {
    assert.throws(() => cidrHost('198.18.0.0/24', 256), /offset 256 is outside 198\.18\.0\.0\/24/);
    assert.throws(() => parseCidr('198.18.0.0/33'), /not an IPv4 CIDR: '198\.18\.0\.0\/33'/);
    assert.throws(() => parseCidr('198.18.0.0'), /not an IPv4 CIDR/);
    assert.throws(() => cidrContains('198.18.0.0/24', '1.2.3'), /not an IPv4 address: '1\.2\.3'/);
  });
});
