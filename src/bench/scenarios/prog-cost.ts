/**
 * Scenario `prog-cost`: what the TC load balancer costs per packet, as the kernel measures it
 * with BPF_PROG_TEST_RUN (lb_tc_ingress on crafted TCP frames): a frontend hit that opens a new
 * flow, a miss (not a service), and a conntrack hit (an established flow). One mode, sluice-tc;
 * the `empty` case (a program that only returns) is the floor the measurement itself adds.
 * The cases and their setup are the datapath harness's (src/datapath/lb-tc-harness.ts), the
 * same the datapath tests measure with.
 *
 * Mode sluice-xdp: lb_xdp (bpf/lb_xdp.c) the same way, cases `xdp-hit` (a new flow to a
 * backend on another node, SNAT, XDP_TX), `xdp-miss`, `xdp-ct-hit`, and `xdp-pass-floor` (a
 * program that only returns XDP_PASS) beside them (src/datapath/lb-xdp-harness.ts).
 */
import type { BpfObject } from '../../bpf/object.js';
import { loadObject } from '../../bpf/object.js';
import { lbTcRodata, lbTcSpec } from '../../datapath/lb-tc.js';
import type { CostCase, LbTcNetns } from '../../datapath/lb-tc-harness.js';
import { createLbTcNetns, measureLbTcCost, NODE } from '../../datapath/lb-tc-harness.js';
import { lbXdpRodata, lbXdpSpec } from '../../datapath/lb-xdp.js';
import type { XdpCostCase } from '../../datapath/lb-xdp-harness.js';
import { measureLbXdpCost } from '../../datapath/lb-xdp-harness.js';
import { clearMaps } from '../../datapath/lb-tc-harness.js';
import type { MetricSpec, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';

const CASES: readonly CostCase[] = ['hit', 'miss', 'ct-hit', 'empty'];
const METRICS: readonly MetricSpec[] = [
  { name: 'ns-per-packet', unit: 'ns/packet', better: 'lower' },
];
const emptySpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_tc_pass'] } as const;
const XDP_CASES: readonly XdpCostCase[] = ['xdp-hit', 'xdp-miss', 'xdp-ct-hit', 'xdp-pass-floor'];
const passSpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_xdp_pass'] } as const;

interface Loaded {
  ns: LbTcNetns;
  obj: BpfObject<typeof lbTcSpec.maps>;
  empty: BpfObject<Record<string, never>>;
}

function planFor(costCase: CostCase, quick: boolean): ScenarioPlan {
  let loaded: Loaded | undefined;
  return {
    params: { case: costCase },
    modes: ['sluice-tc'],
    setup() {
      const ns = createLbTcNetns();
      try {
        loaded = {
          ns,
          obj: loadObject(lbTcSpec, { rodata: lbTcRodata({ nodeIPv4: NODE }) }),
          empty: loadObject(emptySpec),
        };
      } catch (error) {
        ns.destroy();
        throw error;
      }
      return Promise.resolve();
    },
    run() {
      if (!loaded) return Promise.reject(new Error('prog-cost: not set up'));
      const results = measureLbTcCost(
        loaded.obj,
        loaded.empty.program('doctor_tc_pass'),
        loaded.ns,
        {
          runs: quick ? 300 : 2000,
          rounds: 1,
        },
      );
      const r = results.find((x) => x.case === costCase);
      if (!r) return Promise.reject(new Error(`prog-cost: no figure for case ${costCase}`));
      return Promise.resolve({ 'ns-per-packet': r.nsPerPacket });
    },
    teardown() {
      loaded?.obj.close();
      loaded?.empty.close();
      loaded?.ns.destroy();
      loaded = undefined;
      return Promise.resolve();
    },
  };
}

function xdpPlanFor(costCase: XdpCostCase, quick: boolean): ScenarioPlan {
  let loaded:
    | {
        ns: LbTcNetns;
        obj: BpfObject<typeof lbXdpSpec.maps>;
        pass: BpfObject<Record<string, never>>;
      }
    | undefined;
  return {
    params: { case: costCase },
    modes: ['sluice-xdp'],
    setup() {
      const ns = createLbTcNetns();
      try {
        loaded = {
          ns,
          obj: loadObject(lbXdpSpec, { rodata: lbXdpRodata({ nodeIPv4: NODE }) }),
          pass: loadObject(passSpec),
        };
      } catch (error) {
        ns.destroy();
        throw error;
      }
      return Promise.resolve();
    },
    run() {
      if (!loaded) return Promise.reject(new Error('prog-cost: not set up'));
      clearMaps(loaded.obj);
      const results = measureLbXdpCost(
        loaded.obj,
        loaded.pass.program('doctor_xdp_pass'),
        loaded.ns,
        {
          runs: quick ? 300 : 2000,
          rounds: 1,
        },
      );
      const r = results.find((x) => x.case === costCase);
      if (!r) return Promise.reject(new Error(`prog-cost: no figure for case ${costCase}`));
      return Promise.resolve({ 'ns-per-packet': r.nsPerPacket });
    },
    teardown() {
      loaded?.obj.close();
      loaded?.pass.close();
      loaded?.ns.destroy();
      loaded = undefined;
      return Promise.resolve();
    },
  };
}

export const progCostScenario: Scenario = {
  name: 'prog-cost',
  modes: ['sluice-tc', 'sluice-xdp'],
  metrics: METRICS,
  plan({ quick }: ScenarioOptions) {
    return [...CASES.map((c) => planFor(c, quick)), ...XDP_CASES.map((c) => xdpPlanFor(c, quick))];
  },
};
