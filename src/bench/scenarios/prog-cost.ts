/**
 * Scenario `prog-cost`: what the TC load balancer costs per packet, as the kernel measures it
 * with BPF_PROG_TEST_RUN (lb_tc_ingress on crafted TCP frames): a frontend hit that opens a new
 * flow, a miss (not a service), and a conntrack hit (an established flow). One mode, sluice-tc;
 * the `empty` case (a program that only returns) is the floor the measurement itself adds.
 * The cases and their setup are the datapath harness's (src/datapath/lb-tc-harness.ts), the
 * same the datapath tests measure with.
 *
 * Mode sluice-xdp: lb_xdp (bpf/lb_xdp.c) the same way, cases `xdp-hit` (a new flow to a
 * backend on another node, SNAT, XDP_TX), `xdp-miss`, `xdp-ct-hit`, and two floors beside them
 * (src/datapath/lb-xdp-harness.ts): `xdp-pass-floor` (a program that only returns XDP_PASS)
 * and `xdp-ct-insert-floor` (a program that only makes a new flow's two conntrack inserts,
 * bpf/xdp_ct_floor.c). The `xdp-hit` rows note the hit's cost over each floor, run by run
 * from the same measurement (median and min-max over runs).
 */
import type { BpfObject, MapSpec } from '../../bpf/object.js';
import { loadObject } from '../../bpf/object.js';
import { lbTcRodata, lbTcSpec } from '../../datapath/lb-tc.js';
import type { CostCase, LbTcNetns } from '../../datapath/lb-tc-harness.js';
import { createLbTcNetns, measureLbTcCost, NODE } from '../../datapath/lb-tc-harness.js';
import { lbXdpRodata, lbXdpSpec } from '../../datapath/lb-xdp.js';
import type { XdpCostCase } from '../../datapath/lb-xdp-harness.js';
import { ctFloorSpec, measureLbXdpCost } from '../../datapath/lb-xdp-harness.js';
import { clearMaps } from '../../datapath/lb-tc-harness.js';
import { summarize } from '../results.js';
import type { MetricSpec, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';

const CASES: readonly CostCase[] = ['hit', 'miss', 'ct-hit', 'empty'];
const METRICS: readonly MetricSpec[] = [
  { name: 'ns-per-packet', unit: 'ns/packet', better: 'lower' },
];
const emptySpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_tc_pass'] } as const;
const XDP_CASES: readonly XdpCostCase[] = [
  'xdp-hit',
  'xdp-miss',
  'xdp-ct-hit',
  'xdp-pass-floor',
  'xdp-ct-insert-floor',
];
/** Cases whose rows note their cost over other cases' (the issue's target: a hit within 3x). */
const OVER: Partial<Record<string, readonly string[]>> = {
  'xdp-hit': ['xdp-pass-floor', 'xdp-ct-insert-floor'],
};
const passSpec = { file: 'probe_pass.bpf.o', maps: {}, programs: ['doctor_xdp_pass'] } as const;

type MapSpecs = Record<string, MapSpec>;

/** A load balancer's object and the floor program measured beside it. */
interface Rig<M extends MapSpecs> {
  obj: BpfObject<M>;
  floor: BpfObject<Record<string, never>>;
  /** XDP's second floor: a new flow's conntrack inserts alone. */
  ctFloor?: BpfObject<typeof ctFloorSpec.maps>;
}

/** How one mode's cases are measured: what to load, and the harness that measures it. */
interface CostMode<M extends MapSpecs> {
  load(): Rig<M>;
  measure(rig: Rig<M>, ns: LbTcNetns, runs: number): { case: string; nsPerPacket: number }[];
}

/** Loads the object, then the floors; what was loaded is closed again if one fails. */
function loadRig<M extends MapSpecs>(
  load: () => BpfObject<M>,
  floorSpec: typeof emptySpec | typeof passSpec,
  withCtFloor = false,
): Rig<M> {
  const obj = load();
  let floor: BpfObject<Record<string, never>> | undefined;
  try {
    floor = loadObject(floorSpec);
    return { obj, floor, ...(withCtFloor ? { ctFloor: loadObject(ctFloorSpec) } : {}) };
  } catch (error) {
    floor?.close();
    obj.close();
    throw error;
  }
}

const tcMode: CostMode<typeof lbTcSpec.maps> = {
  load: () =>
    loadRig(() => loadObject(lbTcSpec, { rodata: lbTcRodata({ nodeIPv4: NODE }) }), emptySpec),
  measure: ({ obj, floor }, ns, runs) =>
    measureLbTcCost(obj, floor.program('doctor_tc_pass'), ns, { runs, rounds: 1 }),
};

const xdpMode: CostMode<typeof lbXdpSpec.maps> = {
  load: () =>
    loadRig(
      () => loadObject(lbXdpSpec, { rodata: lbXdpRodata({ nodeIPv4: NODE }) }),
      passSpec,
      true,
    ),
  measure: ({ obj, floor, ctFloor }, ns, runs) => {
    clearMaps(obj);
    ctFloor?.maps.ct4.clear();
    return measureLbXdpCost(obj, floor.program('doctor_xdp_pass'), ns, {
      runs,
      rounds: 1,
      ...(ctFloor ? { ctFloor } : {}),
    });
  },
};

/** One case of one mode: its own namespace and objects, loaded in setup, closed in teardown. */
function planFor<M extends MapSpecs>(
  mode: string,
  cost: CostMode<M>,
  costCase: string,
  quick: boolean,
): ScenarioPlan {
  let loaded: { ns: LbTcNetns; rig: Rig<M> } | undefined;
  const ratios = new Map((OVER[costCase] ?? []).map((other) => [other, [] as number[]]));
  return {
    params: { case: costCase },
    modes: [mode],
    setup() {
      const ns = createLbTcNetns();
      try {
        loaded = { ns, rig: cost.load() };
      } catch (error) {
        ns.destroy();
        throw error;
      }
      return Promise.resolve();
    },
    run(_mode, ctx) {
      if (!loaded) return Promise.reject(new Error('prog-cost: not set up'));
      const results = cost.measure(loaded.rig, loaded.ns, quick ? 300 : 2000);
      const r = results.find((x) => x.case === costCase);
      if (!r) return Promise.reject(new Error(`prog-cost: no figure for case ${costCase}`));
      for (const [other, seen] of ratios) {
        const o = results.find((x) => x.case === other);
        if (!o) return Promise.reject(new Error(`prog-cost: no figure for case ${other}`));
        seen.push(r.nsPerPacket / o.nsPerPacket);
        // Rewritten every run: after the last, the note holds every run's ratio.
        const { median, min, max } = summarize(seen);
        ctx.note(`x-${other}`, `${median.toFixed(1)} (${min.toFixed(1)}-${max.toFixed(1)})`);
      }
      return Promise.resolve({ 'ns-per-packet': r.nsPerPacket });
    },
    teardown() {
      loaded?.rig.obj.close();
      loaded?.rig.floor.close();
      loaded?.rig.ctFloor?.close();
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
    return [
      ...CASES.map((c) => planFor('sluice-tc', tcMode, c, quick)),
      ...XDP_CASES.map((c) => planFor('sluice-xdp', xdpMode, c, quick)),
    ];
  },
};
