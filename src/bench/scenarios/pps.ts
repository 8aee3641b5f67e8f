/**
 * Scenario `pps` (issue 10, Performance): 64-byte UDP packets per second to a NodePort, sent
 * from the lab's external namespace by our XDP generator (native/xdp_gen, docs/pps.md) to node
 * 0's NodePort, whose only backend runs on node 1 (a remote backend: node 0 translates and
 * forwards). Packets are counted where they arrive, by an XDP program on the backend pod's eth0
 * that counts and drops them, so the backend's own stack is not what is measured.
 *
 * Metrics: `pps` (packets/s counted at the backend over the generator's sending time) and
 * `cpu-ns-per-packet`: the run time of node 0's uplink NAPI thread (threaded NAPI on fab0,
 * /proc/PID/schedstat, which on this kernel includes softirq work done while it runs) per
 * delivered packet. The fabric's port to node 0 (n-0) gets its own threaded NAPI, so the bridge
 * and node 1 are not charged to node 0. A NAPI thread alone on its CPU runs SCHED_FIFO 1 during a
 * run (NAPI is softirq on a real node); beside the generator, nice -10 like the generator.
 *
 * Params: `services` (1, 10000: filler services make the proxy's rule set that large), `flows`
 * (`new`: every packet a new 5-tuple, from 16,384 addresses x 64,512 ports, so conntrack-based
 * proxies create an entry per packet; `steady`: 10,000 flows repeated), `placement` (`split`:
 * node 0's NAPI thread alone on the node CPU, the generator and the rest of the network on the
 * other; `shared`: all on the node CPU), and which CPU each ran on.
 *
 * Modes: `iptables` (legacy backend, see connect.ts) and `nftables` (kube-proxy's modes),
 * `sluice-tc` (the agent: NodePort balanced per packet at TC on fab0), `sluice-xdp` (the agent
 * with lb_xdp on fab0, XDP_TX towards node 1; the lab prepared by prepareLabForXdp),
 * `sluice-xdp-dsr` (the same with lb.mode dsr: no SNAT, the frontend in an IPv4 option), and the
 * machine's ceilings in a lab with no proxy: `xdp-drop` (count and drop at node 0's fab0,
 * counted there) and `xdp-tx` (swap MACs and XDP_TX at fab0; counted where the frames land,
 * the external namespace's eth0): the interface's ceilings; and `xdp-fwd`, the path's ceiling
 * (xdp_fwd at fab0: lb_xdp's rewrite for the one backend with constants for every lookup,
 * XDP_TX towards node 1; counted at the backend like sluice-xdp, in a lab prepared like its);
 * and `xdp-fwd-ct`, the path's ceiling for a balancer that tracks connections, as the issue's
 * shared XDP/TC conntrack requires (xdp_fwd_ct: xdp_fwd plus one conntrack lookup per packet
 * and one entry written per new flow; at node 1's fab0 xdp_reply_check, the one lookup a node
 * makes of a packet to its pod, in case it answers a flow it translated; in xdp-fwd's lab).
 *
 * The global conntrack table (nf_conntrack_max, not settable per namespace) fills during `new`
 * runs of the kube-proxy modes; the kernel then evicts unreplied entries early, as it would on a
 * real node under a flood, and the lab's namespaces take their entries with them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPF_OUTPUT_DIR } from '../../bpf/object.js';
import type { AgentConfigOverrides } from '../../lab/agents.js';
import { agentPinRoot } from '../../lab/agents.js';
import { Lab } from '../../lab/lab.js';
import { prepareLabForXdp } from '../../lab/xdp-lab.js';
import type { ProxyMode } from '../../lab/proxy.js';
import { Verdict } from '../../datapath/lb-tc.js';
import { objectKey } from '../../model/index.js';
import { BenchError } from '../errors.js';
import { fillerManifests, toYaml } from '../lab/fleet.js';
import type { Flows } from '../pktgen.js';
import {
  BASELINE_OBJECT,
  COUNT_OBJECT,
  FRAME_BYTES,
  FWD_CT_OBJECT,
  GEN_OBJECT,
  NICE,
  XDP_GEN,
  XdpAttachment,
  macOf,
  napiThread,
  nsPerPacket,
  packetRate,
  pinThread,
  runGenerator,
  threadCpuNs,
  threadedNapi,
  unpinThread,
  execFabric,
} from '../pktgen.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Scenario, ScenarioOptions, ScenarioPlan } from '../runner.js';
import { benchLabName } from '../lab/names.js';
import type { FwdPath } from '../xdp-fwd.js';
import { resolveFwdPath, xdpFwdAttachArgs } from '../xdp-fwd.js';

const ALL_MODES = [
  'iptables',
  'nftables',
  'sluice-tc',
  'sluice-xdp',
  'sluice-xdp-dsr',
  'xdp-drop',
  'xdp-tx',
  'xdp-fwd',
  'xdp-fwd-ct',
] as const;
export type Mode = (typeof ALL_MODES)[number];

const METRICS: readonly MetricSpec[] = [
  { name: 'pps', unit: 'packets/s', better: 'higher' },
  // Optional: a run in which no packet arrived has no cost per packet (its pps, 0, is kept).
  { name: 'cpu-ns-per-packet', unit: 'ns/packet', better: 'lower', optional: true },
];

const DEFAULT_SCALES = [1, 10000];
const QUICK_SCALES = [1];
const SECONDS = 3;
const QUICK_SECONDS = 1;
const FLOWS: readonly Flows[] = ['new', 'steady'];
export type Placement = 'split' | 'shared';

/** The measured service: UDP NodePort, one backend on node-1, reached at node-0. */
const TARGET = { name: 'pps-target', port: 7001, nodePort: 30701 } as const;
const ENTRY_NODE = 'node-0';
const PASS_OBJECT = join(BPF_OUTPUT_DIR, 'probe_pass.bpf.o');

/**
 * Seconds a UDP flow without replies is kept, in every mode (conntrack's
 * nf_conntrack_udp_timeout on the nodes, the agent's conntrack.timeouts.udp). The backend never
 * answers, so every flow stays unreplied; with the defaults (30 s, 60 s) a run would inherit
 * the previous runs' flows and the SNAT ports they hold. The same for every mode.
 */
const UDP_TIMEOUT_S = 1;

/**
 * Traffic to a remote backend is SNATed to node 0's address, so the backend's address and port
 * and node 0's address leave only the source port to tell flows apart: conntrack's masquerade
 * picks from 1024-65535; the agent's default pool (61000-65535, 4,536 ports) cannot hold the
 * 10,000 flows of `steady`. The sluice labs get the same range as masquerade.
 */
const SLUICE_CONFIG = {
  perPacketLB: { snatPorts: '1024-65535' },
  conntrack: { timeouts: { udp: UDP_TIMEOUT_S } },
} as const satisfies AgentConfigOverrides;

/** The agent config of sluice-xdp: the XDP fast path (docs/xdp.md) on node 0's uplink. */
const XDP_CONFIG = {
  ...SLUICE_CONFIG,
  xdp: { enabled: true, mode: 'native', interfaces: ['fab0'] },
} as const satisfies AgentConfigOverrides;

/**
 * sluice-xdp with `lb.mode: dsr`: node 0 sends each flow to node 1 with the frontend in an IPv4
 * option instead of SNAT (dsr.h), so a new flow claims no SNAT port and writes one conntrack
 * entry at node 0 (node 1's TC learns the other), and the ~64.5k new flows/s cap of a SNATing
 * forwarder with one backend ("Fairness settings", docs/pps.md) does not apply.
 */
const XDP_DSR_CONFIG = {
  ...XDP_CONFIG,
  lb: { mode: 'dsr' },
} as const satisfies AgentConfigOverrides;

/** The modes whose node 0 runs lb_xdp (their notes say what carried the packets). */
const LB_XDP_MODES: readonly Mode[] = ['sluice-xdp', 'sluice-xdp-dsr'];

/** Why a mode cannot run on this build, or undefined when it can (every mode runs today). */
export function unavailableReason(_mode: Mode): string | undefined {
  return undefined;
}

/** The modes that run here; the others are named in the params with their reason. */
export function availableModes(): Mode[] {
  return ALL_MODES.filter((m) => unavailableReason(m) === undefined);
}

export interface LabKind {
  proxy: ProxyMode;
  name: string;
  agentConfig?: AgentConfigOverrides;
  /** The lab's veths get what XDP forwarding needs (prepareLabForXdp, docs/xdp.md). */
  xdp?: boolean;
}

/**
 * The lab each mode measures in; the two ceilings share a proxy-less lab. Names carry the run
 * tag (src/bench/lab/names.ts), so two benchmark runs on one machine never share, or tear
 * down, each other's labs.
 */
const LAB_OF_MODE: Record<Mode, LabKind> = {
  iptables: { proxy: 'iptables', name: benchLabName('ppi') },
  nftables: { proxy: 'nftables', name: benchLabName('ppn') },
  'sluice-tc': { proxy: 'sluice', name: benchLabName('ppt'), agentConfig: SLUICE_CONFIG },
  'sluice-xdp': { proxy: 'sluice', name: benchLabName('ppx'), agentConfig: XDP_CONFIG, xdp: true },
  'sluice-xdp-dsr': {
    proxy: 'sluice',
    name: benchLabName('ppd'),
    agentConfig: XDP_DSR_CONFIG,
    xdp: true,
  },
  'xdp-drop': { proxy: 'none', name: benchLabName('ppb') },
  'xdp-tx': { proxy: 'none', name: benchLabName('ppb') },
  // Its own lab: prepared for XDP as sluice-xdp's is (the interface ceilings' lab is not).
  'xdp-fwd': { proxy: 'none', name: benchLabName('ppf'), xdp: true },
  'xdp-fwd-ct': { proxy: 'none', name: benchLabName('ppf'), xdp: true },
};

export function ppsManifests(services: number): object[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: TARGET.name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: TARGET.name } },
        template: {
          metadata: { labels: { app: TARGET.name } },
          spec: {
            nodeName: 'node-1',
            containers: [
              {
                name: 'echo',
                image: 'sluice/echo',
                ports: [{ name: 'udp', containerPort: TARGET.port, protocol: 'UDP' }],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: TARGET.name },
      spec: {
        type: 'NodePort',
        selector: { app: TARGET.name },
        ports: [
          {
            name: 'udp',
            protocol: 'UDP',
            port: TARGET.port,
            targetPort: 'udp',
            nodePort: TARGET.nodePort,
          },
        ],
      },
    },
    ...fillerManifests(services - 1),
  ];
}

/** A lab brought up for the pps runs, with what every run needs to know. */
export interface PpsLab {
  lab: Lab;
  /** The fabric's XDP fast path from the external eth0 to node 0 (bpf/xdp_gen.c). */
  forwarder: XdpAttachment;
  stateDir: string;
  labName: string;
  backendPod: string;
  addressing: { srcMac: string; dstMac: string; srcIp: string; dstIp: string; dport: number };
  /** xdp-fwd's constants, resolved from the lab at its first run. */
  fwdPath?: FwdPath;
}

/**
 * Gives the path's veths what the measurement needs (docs/pps.md): every veth here has NAPI only
 * with GRO or an XDP program, and passes an skb to the peer's NAPI only when the sender has TSO
 * off or the peer has an XDP program; otherwise the peer's work runs as backlog softirq on
 * whichever CPU sent it, and cannot be pinned or timed.
 * - ext (fabric side of the external eth0): GRO, so it takes the generator's redirected frames.
 * - node 0's fab0: GRO, TSO off on its fabric port n-0, threaded NAPI: node 0's own work.
 * - n-0: an XDP_PASS program (frames node 0 sends back with XDP_TX are only kicked into a peer
 *   that has one), TSO off on fab0, threaded NAPI: the bridge and node 1 beyond it run here,
 *   with the generator (split) or with everything else (shared), not in the timed thread.
 * - The fabric bridge runs no netfilter (br_netfilter, when loaded, would make it).
 */
async function prepareNapi(topo: Lab['topology']): Promise<void> {
  const port = topo.node(ENTRY_NODE).fabricPort;
  const node = { target: { node: ENTRY_NODE } } as const;
  await execFabric(topo, ['ethtool', '-K', 'ext', 'gro', 'on']);
  for (const family of ['iptables', 'ip6tables', 'arptables']) {
    await execFabric(topo, ['sysctl', '-qw', `net.bridge.bridge-nf-call-${family}=0`]);
  }
  await execFabric(topo, ['ethtool', '-K', port, 'tso', 'off']);
  await execNode(topo, ['ethtool', '-K', 'fab0', 'tso', 'off']);
  // -force: the XDP lab has one there already (prepareLabForXdp); the same program.
  await execFabric(topo, [
    'ip',
    '-force',
    'link',
    'set',
    'dev',
    port,
    'xdpdrv',
    'obj',
    PASS_OBJECT,
    'sec',
    'xdp',
  ]);
  await threadedNapi(topo, { fabric: true }, port);
  await threadedNapi(topo, node, 'fab0');
}

async function execNode(topo: Lab['topology'], argv: string[]): Promise<void> {
  const r = await topo.execInNode(ENTRY_NODE, argv, { allowFailure: true });
  if (r.code !== 0) throw new BenchError(`${argv.join(' ')} in ${ENTRY_NODE}: ${r.stderr.trim()}`);
}

/**
 * upLab, again when legacy iptables could not get /run/xtables.lock: one lock for the whole
 * machine, which anything else running iptables-legacy may hold for longer than the lab waits.
 */
async function upLabPatiently(kind: LabKind, manifest: string, ctx: RunContext): Promise<PpsLab> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await upLab(kind, manifest);
    } catch (error) {
      if (attempt >= 4 || !String(error).includes('xtables lock')) throw error;
      ctx.progress(`(xtables lock busy, again in 15 s) `);
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      ctx.signal.throwIfAborted();
    }
  }
}

/** Brings up a lab for pps runs (stateDir: a fresh temporary one unless given). */
export async function upLab(
  kind: LabKind,
  manifest: string,
  stateDir = mkdtempSync(join(tmpdir(), 'sluice-bench-pps-')),
): Promise<PpsLab> {
  const labName = kind.name;
  try {
    const lab = await Lab.up({
      files: [manifest],
      nodes: 2,
      proxy: kind.proxy,
      stateDir,
      labName,
      ...(kind.proxy === 'iptables' ? { iptablesBackend: 'legacy' as const } : {}),
      ...(kind.agentConfig ? { agentConfig: kind.agentConfig } : {}),
    });
    const topo = lab.topology;
    if (kind.proxy === 'iptables' || kind.proxy === 'nftables') {
      for (const node of topo.nodes()) {
        await topo.execInNode(node.name, [
          'sysctl',
          '-qw',
          `net.netfilter.nf_conntrack_udp_timeout=${UDP_TIMEOUT_S}`,
        ]);
      }
    }
    const backend = [...lab.state.pods.values()].find((p) => p.labels.app === TARGET.name);
    if (!backend) throw new BenchError('pps: the target backend pod is missing');
    if (kind.xdp) prepareLabForXdp(lab);
    await prepareNapi(topo);
    const dstMac = await macOf(topo, { target: { node: ENTRY_NODE } }, 'fab0');
    const forwarder = await XdpAttachment.attach(
      topo,
      { fabric: true },
      'ext',
      GEN_OBJECT,
      'xdp_gen_fwd',
      ['--fwd-dev', topo.node(ENTRY_NODE).fabricPort, '--fwd-mac', dstMac],
    );
    return {
      lab,
      forwarder,
      stateDir,
      labName,
      backendPod: objectKey(backend.namespace, backend.name),
      addressing: {
        srcMac: await macOf(topo, { target: 'external' }, 'eth0'),
        dstMac,
        srcIp: topo.externalIP,
        dstIp: topo.node(ENTRY_NODE).ip,
        dport: TARGET.nodePort,
      },
    };
  } catch (error) {
    await Lab.down(stateDir, labName).catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}

export async function downLab(l: PpsLab): Promise<void> {
  await l.forwarder.close();
  await Lab.down(l.stateDir, l.labName);
  rmSync(l.stateDir, { recursive: true, force: true });
}

export interface Cpus {
  generator: number;
  node: number;
}

/** Which CPU runs what: node 0's NAPI threads on `node`, the generator beside or with them. */
export function placementCpus(placement: Placement, nodeCpu: number, cpuCount: number): Cpus {
  if (placement === 'shared') return { generator: nodeCpu, node: nodeCpu };
  if (cpuCount < 2) throw new BenchError('pps placement split needs two CPUs');
  return { generator: nodeCpu === 0 ? 1 : 0, node: nodeCpu };
}

interface Counting {
  /** The program this mode puts on node 0's fab0 (with its xdp_gen attach options). */
  node?: { object: string; prog: string; args?: string[] };
  /** The program this mode puts on the backend's node's fab0. */
  backendNode?: { object: string; prog: string };
  counter: 'node' | 'external' | { pod: string };
}

/** Where a mode's packets are counted, and which program (if any) sits on node 0's fab0. */
async function countingFor(mode: Mode, l: PpsLab): Promise<Counting> {
  if (mode === 'xdp-drop') {
    return { node: { object: BASELINE_OBJECT, prog: 'xdp_drop_count' }, counter: 'node' };
  }
  if (mode === 'xdp-tx') {
    return { node: { object: BASELINE_OBJECT, prog: 'xdp_tx_swap' }, counter: 'external' };
  }
  if (mode === 'xdp-fwd' || mode === 'xdp-fwd-ct') {
    if (!l.fwdPath) {
      await refreshNeighbours(l); // the next hop's MAC comes from node 0's neighbour table
      const backend = l.lab.topology.pod(l.backendPod);
      l.fwdPath = await resolveFwdPath(
        l.lab.topology,
        ENTRY_NODE,
        { ip: backend.ip, port: TARGET.port },
        TARGET.nodePort,
      );
    }
    const args = xdpFwdAttachArgs(l.fwdPath);
    if (mode === 'xdp-fwd') {
      return {
        node: { object: BASELINE_OBJECT, prog: 'xdp_fwd', args },
        counter: { pod: l.backendPod },
      };
    }
    return {
      node: { object: FWD_CT_OBJECT, prog: 'xdp_fwd_ct', args },
      backendNode: { object: FWD_CT_OBJECT, prog: 'xdp_reply_check' },
      counter: { pod: l.backendPod },
    };
  }
  return { counter: { pod: l.backendPod } };
}

/** The modes whose program on node 0's fab0 sends packets on with XDP_TX. */
const XDP_TX_MODES: readonly Mode[] = [...LB_XDP_MODES, 'xdp-tx', 'xdp-fwd', 'xdp-fwd-ct'];

/**
 * Frames node 0's fab0 sent on with XDP_TX, from the veth's own counters (ethtool -S), whatever
 * program runs there: `xdp_tx` the frames its peer (the fabric port n-0) took, `xdp_tx_errors`
 * those it could not (its ring full). Their sum is what the program returned XDP_TX for.
 */
async function fab0XdpTx(l: PpsLab): Promise<{ sent: number; errors: number }> {
  const r = await l.lab.topology.execInNode(ENTRY_NODE, ['ethtool', '-S', 'fab0']);
  let sent = 0;
  let errors = 0;
  for (const m of r.stdout.matchAll(/^\s*rx_queue_\d+_xdp_tx(_errors)?:\s*(\d+)\s*$/gm)) {
    if (m[1]) errors += Number(m[2]);
    else sent += Number(m[2]);
  }
  return { sent, errors };
}

interface Shared {
  labs: Map<string, PpsLab>;
  manifestDir: string;
}

/**
 * Fresh ARP entries along the path before each run, by pinging each next hop. Under the flood
 * an ARP reply can be lost in a full ring, and a node that has to resolve its next hop then
 * would drop everything; an entry confirmed now stays reachable for longer than a run. The
 * pings also teach the fabric bridge where node 0 and the external namespace are.
 */
async function refreshNeighbours(l: PpsLab): Promise<void> {
  const topo = l.lab.topology;
  const backend = topo.pod(l.backendPod);
  const hops: [Parameters<typeof topo.exec>[0], string][] = [
    ['external', topo.node(ENTRY_NODE).ip],
    [{ node: ENTRY_NODE }, topo.node(backend.node).ip],
    [{ node: backend.node }, backend.ip],
  ];
  for (const [from, to] of hops) {
    await topo.exec(from, ['ping', '-c', '1', '-W', '1', to], { allowFailure: true });
  }
}

/** Packets verdict_stats counted for `verdict` on node 0, all CPUs (bpftool: per-CPU by path). */
function verdictPackets(l: PpsLab, verdict: number): number {
  const path = join(agentPinRoot(l.lab.topology, ENTRY_NODE), 'verdict_stats');
  const key = [verdict & 255, (verdict >> 8) & 255, 0, 0].map(String);
  const out = execFileSync('bpftool', ['-j', 'map', 'lookup', 'pinned', path, 'key', ...key]);
  const parsed = JSON.parse(out.toString()) as { values: { value: string[] }[] };
  let total = 0n;
  for (const { value } of parsed.values) {
    total += Buffer.from(value.slice(0, 8).map((b) => Number.parseInt(b, 16))).readBigUInt64LE(0);
  }
  return Number(total);
}

/** IP packets node 0's stack received (Ip InReceives of its namespace, /proc/net/snmp). */
async function stackReceives(l: PpsLab): Promise<number> {
  const r = await l.lab.topology.execInNode(ENTRY_NODE, ['cat', '/proc/net/snmp']);
  const ip = r.stdout.split('\n').filter((line) => line.startsWith('Ip: '));
  const names = ip[0]?.split(/\s+/) ?? [];
  const values = ip[1]?.split(/\s+/) ?? [];
  const at = names.indexOf('InReceives');
  if (at < 0 || values[at] === undefined) throw new BenchError('pps: no Ip InReceives in snmp');
  return Number(values[at]);
}

/**
 * What carried sluice-xdp's packets through node 0: those lb_xdp sent back out with XDP_TX,
 * those it handed to TC, and those node 0's stack received (TC, netfilter and routing see only
 * these), each per delivered packet. A fast path that works shows ~1, 0, ~0.
 */
interface PathCounters {
  xdpTx: number;
  handoff: number;
  stack: number;
}

async function pathCounters(l: PpsLab): Promise<PathCounters> {
  return {
    xdpTx: verdictPackets(l, Verdict.DELIVER_XDP_TX),
    handoff: verdictPackets(l, Verdict.XDP_HANDOFF),
    stack: await stackReceives(l),
  };
}

/** One measurement: counters attached, NAPI threads pinned, the generator run, figures. */
export async function measure(
  mode: Mode,
  l: PpsLab,
  flows: Flows,
  cpus: Cpus,
  seconds: number,
  ctx: RunContext,
): Promise<Record<string, number>> {
  const topo = l.lab.topology;
  const attached: XdpAttachment[] = [];
  const pinned: number[] = [];
  try {
    const how = await countingFor(mode, l);
    if (how.node) {
      attached.push(
        await XdpAttachment.attach(
          topo,
          { target: { node: ENTRY_NODE } },
          'fab0',
          how.node.object,
          how.node.prog,
          how.node.args,
        ),
      );
    }
    if (how.backendNode) {
      attached.push(
        await XdpAttachment.attach(
          topo,
          { target: { node: topo.pod(l.backendPod).node } },
          'fab0',
          how.backendNode.object,
          how.backendNode.prog,
        ),
      );
    }
    const counter =
      how.counter === 'node'
        ? attached[0]
        : await XdpAttachment.attach(
            topo,
            { target: how.counter === 'external' ? 'external' : how.counter },
            'eth0',
            COUNT_OBJECT,
            'xdp_count',
          );
    if (!counter) throw new Error('pps: no counter');
    if (counter !== attached[0]) attached.push(counter);
    // The NAPI threads are looked up again: attaching XDP can recreate a veth's NAPI.
    const fabPid = await napiThread(topo, { target: { node: ENTRY_NODE } }, 'fab0');
    const portPid = await napiThread(topo, { fabric: true }, topo.node(ENTRY_NODE).fabricPort);
    // Node 0's thread on the node CPU; the fabric port's (the bridge and node 1 beyond it: the
    // rest of the network) with the generator, so that in `split` the node CPU does node 0's
    // work alone.
    for (const [pid, cpu] of [
      [fabPid, cpus.node],
      [portPid, cpus.generator],
    ] as const) {
      pinned.push(pid);
      await pinThread(pid, cpu, cpu !== cpus.generator);
    }
    await refreshNeighbours(l);
    ctx.signal.throwIfAborted();
    const pathBefore = LB_XDP_MODES.includes(mode) ? await pathCounters(l) : undefined;
    const txBefore = XDP_TX_MODES.includes(mode) ? await fab0XdpTx(l) : undefined;
    const before = await counter.packets();
    const cpuBefore = threadCpuNs(fabPid);
    const gen = await runGenerator(topo, {
      addressing: l.addressing,
      flows,
      seconds,
      cpu: cpus.generator,
    });
    const cpuAfter = threadCpuNs(fabPid);
    const delivered = (await counter.packets()) - before;
    if (pathBefore) {
      const after = await pathCounters(l);
      const share = (k: keyof PathCounters): string =>
        ((after[k] - pathBefore[k]) / Math.max(1, delivered)).toFixed(3);
      ctx.note('xdp-tx-per-delivered', share('xdpTx'));
      ctx.note('handoff-per-delivered', share('handoff'));
      ctx.note('node0-stack-rx-per-delivered', share('stack'));
      // What node 0 itself sent on: beyond it, the bridge and node 1 can lose what it sent.
      ctx.note('node0-xdp-tx-pps', Math.round((after.xdpTx - pathBefore.xdpTx) / gen.seconds));
    }
    if (txBefore) {
      const tx = await fab0XdpTx(l);
      const rate = (n: number): number => Math.round(n / gen.seconds);
      // The ceilings count no verdicts: what they sent on is fab0's count (sluice-xdp's is
      // lb_xdp's own count of XDP_TX verdicts, above).
      if (!pathBefore) {
        ctx.note('node0-xdp-tx-pps', rate(tx.sent + tx.errors - txBefore.sent - txBefore.errors));
      }
      // Sent with XDP_TX, but the fabric port's ring was full: lost at node 0's own door.
      ctx.note('node0-xdp-tx-err-pps', rate(tx.errors - txBefore.errors));
    }
    ctx.signal.throwIfAborted();
    // Not a failed run: the mode delivered nothing at this load (iptables at 10k services, new
    // flows, did). Its pps is 0; a CPU cost per delivered packet does not exist.
    if (delivered === 0) return { pps: 0 };
    return {
      pps: packetRate(delivered, gen.seconds),
      'cpu-ns-per-packet': nsPerPacket(cpuAfter - cpuBefore, delivered),
    };
  } finally {
    for (const pid of pinned) await unpinThread(pid);
    for (const a of attached.reverse()) await a.close();
  }
}

interface PlanSpec {
  services: number;
  flows: Flows;
  placement: Placement;
  cpus: Cpus;
  seconds: number;
  /** The last plan at this service count tears the labs down. */
  last: boolean;
}

function planFor(spec: PlanSpec, shared: Shared, modes: readonly Mode[]): ScenarioPlan {
  const unavailable = ALL_MODES.filter((m) => !modes.includes(m))
    .map((m) => `${m}: ${unavailableReason(m) ?? 'not run'}`)
    .join('; ');
  const params: Params = {
    services: spec.services,
    flows: spec.flows,
    placement: spec.placement,
    'generator-cpu': spec.cpus.generator,
    'node-cpu': spec.cpus.node,
    traffic: 'external to node-0 NodePort, backend on node-1',
    'frame-bytes': FRAME_BYTES,
    'cpu-time': 'node-0 fab0 NAPI thread',
    'generator-nice': NICE,
    'napi-sched':
      spec.placement === 'split'
        ? 'node-0 SCHED_FIFO 1, fabric port nice -10'
        : 'nice -10 (beside the generator)',
    'iptables-backend': 'legacy',
    'udp-timeout-s': UDP_TIMEOUT_S,
    'snat-ports': '1024-65535',
    ...(unavailable ? { unavailable } : {}),
  };
  let failed = false;
  /** Runs per mode in which no packet arrived (noted: their rows have fewer cpu runs). */
  const emptyRuns = new Map<string, number>();
  const teardownAll = async (): Promise<void> => {
    const labs = [...new Set(shared.labs.values())];
    shared.labs.clear();
    for (const l of labs) await downLab(l);
    if (shared.manifestDir) rmSync(shared.manifestDir, { recursive: true, force: true });
    shared.manifestDir = '';
  };
  return {
    params,
    async setup(ctx: RunContext) {
      try {
        if (shared.labs.size > 0) return;
        shared.manifestDir = mkdtempSync(join(tmpdir(), 'sluice-bench-pps-manifests-'));
        const manifest = join(shared.manifestDir, 'pps.yaml');
        writeFileSync(manifest, toYaml(ppsManifests(spec.services)));
        for (const mode of modes) {
          const kind = LAB_OF_MODE[mode];
          const existing = [...shared.labs.values()].find((l) => l.labName === kind.name);
          if (existing) {
            shared.labs.set(mode, existing);
            continue;
          }
          ctx.progress(`[pps services=${spec.services}] bringing up the ${mode} lab... `);
          const started = performance.now();
          shared.labs.set(mode, await upLabPatiently(kind, manifest, ctx));
          ctx.progress(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
          ctx.signal.throwIfAborted();
        }
      } catch (error) {
        failed = true;
        throw error;
      }
    },
    async run(mode: string, ctx: RunContext) {
      const l = shared.labs.get(mode);
      try {
        if (!l) throw new Error(`pps: no lab for mode '${mode}'`);
        const samples = await measure(mode as Mode, l, spec.flows, spec.cpus, spec.seconds, ctx);
        if (samples['cpu-ns-per-packet'] === undefined) {
          emptyRuns.set(mode, (emptyRuns.get(mode) ?? 0) + 1);
          ctx.note('runs-without-a-packet', emptyRuns.get(mode) ?? 0);
        }
        return samples;
      } catch (error) {
        failed = true;
        throw error;
      }
    },
    async teardown() {
      if (failed || spec.last) await teardownAll();
    },
  };
}

function checkBuilt(): void {
  for (const f of [XDP_GEN, GEN_OBJECT, COUNT_OBJECT, BASELINE_OBJECT, FWD_CT_OBJECT]) {
    if (!existsSync(f)) {
      throw new BenchError(`${f} does not exist: build it with 'make -C bpf && make -C native'`);
    }
  }
  execFileSync('iptables-legacy-restore', ['--version'], { stdio: 'ignore' });
}

export const ppsScenario: Scenario = {
  name: 'pps',
  get modes() {
    return availableModes();
  },
  metrics: METRICS,
  plan({ quick, services, cpu, modes: selected }: ScenarioOptions) {
    checkBuilt();
    const cpuCount = cpus().length;
    const nodeCpu = cpu ?? (cpuCount > 1 ? 1 : 0);
    if (nodeCpu >= cpuCount) throw new BenchError(`pps: CPU ${nodeCpu} does not exist`);
    const placements: Placement[] = cpuCount > 1 ? ['split', 'shared'] : ['shared'];
    const scales = services ?? (quick ? QUICK_SCALES : DEFAULT_SCALES);
    // Labs are brought up only for the modes that run (--modes).
    const modes = availableModes().filter((m) => !selected || selected.includes(m));
    const plans: ScenarioPlan[] = [];
    for (const n of scales) {
      const shared: Shared = { labs: new Map(), manifestDir: '' };
      const specs = FLOWS.flatMap((flows) => placements.map((placement) => ({ flows, placement })));
      specs.forEach(({ flows, placement }, i) => {
        plans.push(
          planFor(
            {
              services: n,
              flows,
              placement,
              cpus: placementCpus(placement, nodeCpu, cpuCount),
              seconds: quick ? QUICK_SECONDS : SECONDS,
              last: i === specs.length - 1,
            },
            shared,
            modes,
          ),
        );
      });
    }
    return plans;
  },
};
