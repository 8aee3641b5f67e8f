import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  base32,
  iptablesEndpointChain,
  iptablesServiceChains,
  nftablesEndpointNames,
  nftablesServiceChains,
} from './names.js';
import { masqueradeMark } from './node.js';

describe('kube-proxy names', () => {
  it('base32 matches RFC 4648 test vectors', () => {
    const enc = (s: string): string => base32(new TextEncoder().encode(s));
    assert.equal(enc(''), '');
    assert.equal(enc('f'), 'MY======');
    assert.equal(enc('fo'), 'MZXQ====');
    assert.equal(enc('foob'), 'MZXW6YQ=');
    assert.equal(enc('foobar'), 'MZXW6YTBOI======');
  });

  it('iptables chains hash like kube-proxy (names from its proxier_test.go)', () => {
    const chains = iptablesServiceChains('ns1/svc1:p80', 'tcp');
    assert.equal(chains.cluster, 'KUBE-SVC-XPGD46QRK7WJZT7O');
    assert.equal(chains.local, 'KUBE-SVL-XPGD46QRK7WJZT7O');
    assert.equal(chains.external, 'KUBE-EXT-XPGD46QRK7WJZT7O');
    assert.equal(
      iptablesEndpointChain('ns1/svc1:p80', 'tcp', '10.180.0.1:80'),
      'KUBE-SEP-SXIVWICOYRO3J4NJ',
    );
  });

  it('nftables chains hash like kube-proxy (names from its proxier_test.go)', () => {
    assert.equal(
      nftablesServiceChains('ns1', 'svc1', 'tcp', 'p80').cluster,
      'service-ULMVA6XW-ns1/svc1/tcp/p80',
    );
    const ep = nftablesEndpointNames('ns1', 'svc1', 'tcp', 'p80', '10.180.0.1', 80);
    assert.equal(ep.chain, 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
    assert.equal(ep.affinitySet, 'affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  });

  it('formats the masquerade mark as Go %#08x', () => {
    assert.equal(masqueradeMark(), '0x00004000');
    assert.equal(masqueradeMark(0), '0x00000001');
    assert.throws(() => masqueradeMark(32), RangeError);
  });
});
