/**
 * Measures (never asserts) the per-packet cost of lb_xdp by BPF_PROG_TEST_RUN: frontend hit to a
 * remote backend (SNAT, XDP_TX), miss, conntrack hit, beside a program that only returns
 * XDP_PASS and one that only makes a new flow's two conntrack inserts; reported as test
 * diagnostics (ns/packet).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { requireKernel } from '../testing/privileges.js';
import type { LbTcNetns } from './lb-tc-harness.js';
import { clearMaps, createLbTcNetns, NODE } from './lb-tc-harness.js';
import { lbXdpRodata, lbXdpSpec } from './lb-xdp.js';
import { ctFloorSpec, measureLbXdpCost } from './lb-xdp-harness.js';

const passSpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_xdp_pass'] } as const;

describe('lb_xdp cost (measured, not asserted)', () => {
  let ns: LbTcNetns;
  let obj: BpfObject<typeof lbXdpSpec.maps>;
  let pass: BpfObject<Record<string, never>>;
  let ctFloor: BpfObject<typeof ctFloorSpec.maps>;
  before(() => {
    requireKernel();
    ns = createLbTcNetns();
    obj = loadObject(lbXdpSpec, { rodata: lbXdpRodata({ nodeIPv4: NODE }) });
    pass = loadObject(passSpec);
    ctFloor = loadObject(ctFloorSpec);
  });
  after(() => {
    obj?.close();
    pass?.close();
    ctFloor?.close();
    ns?.destroy();
  });

  it('ns/packet for hit, miss, conntrack hit, the XDP_PASS floor and the insert floor', (t) => {
    clearMaps(obj);
    const results = measureLbXdpCost(obj, pass.program('doctor_xdp_pass'), ns, { ctFloor });
    assert.equal(results.length, 5);
    for (const r of results) {
      t.diagnostic(`${r.case}: ${r.nsPerPacket.toFixed(0)} ns/packet (${r.runs} runs x 3 rounds)`);
      assert.ok(r.nsPerPacket > 0);
    }
  });
});
