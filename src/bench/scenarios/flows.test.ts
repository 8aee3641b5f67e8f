import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientOf, conntrackLines } from './flows.js';

describe('flows conntrack lines', () => {
  it('describe the same flows as ct4, DNATed from the NodePort to the backend', () => {
    const lines = conntrackLines(59_999, 2, '10.0.0.1', '10.244.0.5').trimEnd().split('\n');
    assert.equal(lines.length, 2);
    const c = clientOf(60_000);
    assert.equal(c.address, '198.18.64.1');
    assert.equal(
      lines[1],
      `-I -p tcp -s 198.18.64.1 -d 10.0.0.1 --sport ${c.port} --dport 30080 ` +
        `-r 10.244.0.5 -q 198.18.64.1 --reply-port-src 8080 --reply-port-dst ${c.port} ` +
        '--state ESTABLISHED -t 21600 -u ASSURED,SEEN_REPLY',
    );
  });
});
