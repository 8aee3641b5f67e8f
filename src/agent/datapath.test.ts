import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interfaceMatcher, netnsInterfaces } from './datapath.js';

describe('pod interfaces', () => {
  it('matches names and globs, whole names only', () => {
    const matches = interfaceMatcher(['p*', 'veth?', 'eth.1']);
    assert.ok(matches('p0'));
    assert.ok(matches('p123'));
    assert.ok(matches('p'));
    assert.ok(matches('veth1'));
    assert.ok(matches('eth.1'));
    assert.equal(matches('fab0'), false);
    assert.equal(matches('veth12'), false);
    assert.equal(matches('eth01'), false, 'a dot is a dot');
    assert.equal(matches('lo'), false);
    assert.equal(interfaceMatcher([])('p0'), false);
  });

  it("lists this network namespace's interfaces", () => {
    assert.ok(netnsInterfaces().includes('lo'));
  });
});
