/**
 * Measures (never asserts) the per-packet cost of lb_tc_ingress by BPF_PROG_TEST_RUN: frontend
 * hit (a new flow), miss, conntrack hit; reported as test diagnostics (ns/packet).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BpfObject } from '../bpf/object.js';
import { loadObject } from '../bpf/object.js';
import { requireKernel } from '../testing/privileges.js';
import { lbTcRodata, lbTcSpec } from './lb-tc.js';
import type { LbTcNetns } from './lb-tc-harness.js';
import { createLbTcNetns, measureLbTcCost, NODE } from './lb-tc-harness.js';

const emptySpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_tc_pass'] } as const;

describe('lb_tc cost (measured, not asserted)', () => {
  let ns: LbTcNetns;
  let obj: BpfObject<typeof lbTcSpec.maps>;
  let empty: BpfObject<Record<string, never>>;
  before(() => {
    requireKernel();
    ns = createLbTcNetns();
    obj = loadObject(lbTcSpec, { rodata: lbTcRodata({ nodeIPv4: NODE }) });
    empty = loadObject(emptySpec);
  });
  after(() => {
    obj?.close();
    empty?.close();
    ns?.destroy();
  });

  it('ns/packet for frontend hit, miss and conntrack hit', (t) => {
    const results = measureLbTcCost(obj, empty.program('doctor_tc_pass'), ns);
    for (const r of results) {
      t.diagnostic(`${r.case}: ${r.nsPerPacket.toFixed(0)} ns/packet (${r.runs} runs x 3 rounds)`);
      assert.ok(r.nsPerPacket > 0);
    }
  });
});
