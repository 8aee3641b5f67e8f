/**
 * The path ceilings of `sluice bench pps` (docs/pps.md). Mode `xdp-fwd`: bpf/xdp_baseline.c's
 * xdp_fwd on node 0's fab0 gives every IPv4 UDP frame for the NodePort lb_xdp's rewrite for the
 * one remote backend, with every lookup replaced by a constant from .rodata, and sends it on
 * with XDP_TX. Mode `xdp-fwd-ct`: bpf/xdp_fwd_ct.c's xdp_fwd_ct, the same plus the least
 * connection tracking does (a lookup per packet, an entry written per new flow), and its
 * xdp_reply_check on the backend's node (a lookup per packet). This module
 * turns the lab's facts into those constants (the same for both): for the tests' loader
 * (LoadOptions.rodata) and for `xdp_gen attach --rodata NAME=HEX` (the bench), from one codec
 * each.
 */
import type { Codec } from '../bpf/codec.js';
import { be16, be32, encodeOne, u64 } from '../bpf/codec.js';
import type { ObjectSpec } from '../bpf/object.js';
import { Ct4Entry, Ct4Key, ipv4ToNumber } from '../datapath/lb-tc.js';
import type { LabTopology } from '../lab/topology/index.js';
import { BenchError } from './errors.js';
import { macOf } from './pktgen.js';

/** What xdp_fwd needs to know: the frames it takes, and where they go. */
export interface FwdPath {
  /** Node 0's address: the NodePort's and the SNAT source. */
  node: string;
  nodePort: number;
  backend: string;
  backendPort: number;
  /** The next hop towards the backend (lb_xdp's FIB answer): the backend node's fab0. */
  nextHopMac: string;
  /** Node 0's own fab0, the frame's new source. */
  nodeMac: string;
}

const RODATA = {
  node_ipv4: be32,
  path_nodeport: be16,
  path_backend_addr: be32,
  path_backend_port: be16,
  path_dmac: u64,
  path_smac: u64,
} as const satisfies Record<string, Codec<number> | Codec<bigint>>;

/** xdp_baseline.bpf.o with xdp_fwd's .rodata (its other programs take none). */
export const xdpFwdSpec = {
  file: 'xdp_baseline.bpf.o',
  maps: {},
  programs: ['xdp_fwd'],
  rodata: RODATA,
} as const satisfies ObjectSpec;

/** xdp_fwd_ct.bpf.o: xdp_fwd's .rodata, and the conntrack map its programs use. */
export const xdpFwdCtSpec = {
  file: 'xdp_fwd_ct.bpf.o',
  maps: { ct4: { key: Ct4Key, value: Ct4Entry } },
  programs: ['xdp_fwd_ct', 'xdp_reply_check'],
  rodata: RODATA,
} as const satisfies ObjectSpec;

/** A MAC as xdp_fwd's __u64 holds it: its 6 bytes in memory order in the low bytes. */
export function macAsU64(mac: string): bigint {
  const parts = mac.split(':').map((h) => Number.parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) {
    throw new BenchError(`xdp-fwd: invalid MAC address '${mac}'`);
  }
  const b = Buffer.alloc(8);
  Buffer.from(parts).copy(b);
  return b.readBigUInt64LE(0);
}

/** LoadOptions.rodata for xdpFwdSpec. */
export function xdpFwdRodata(p: FwdPath): Record<keyof typeof RODATA, number | bigint> {
  return {
    node_ipv4: ipv4ToNumber(p.node),
    path_nodeport: p.nodePort,
    path_backend_addr: ipv4ToNumber(p.backend),
    path_backend_port: p.backendPort,
    path_dmac: macAsU64(p.nextHopMac),
    path_smac: macAsU64(p.nodeMac),
  };
}

/** The same values as `xdp_gen attach` options: --rodata NAME=HEX, bytes in memory order. */
export function xdpFwdAttachArgs(p: FwdPath): string[] {
  const values = xdpFwdRodata(p);
  return Object.entries(RODATA).flatMap(([name, codec]) => {
    const v = values[name as keyof typeof RODATA];
    const bytes = encodeOne(codec as Codec<number | bigint>, v);
    return ['--rodata', `${name}=${bytes.toString('hex')}`];
  });
}

/**
 * The path's constants from the lab, as node 0's kernel has them: the route to the backend pod
 * (`ip route get`: out of fab0 via the backend node) and the neighbour entry of that gateway
 * (the MAC lb_xdp's FIB lookup would return). The caller has refreshed the neighbour (a ping).
 */
export async function resolveFwdPath(
  topo: LabTopology,
  entryNode: string,
  backend: { ip: string; port: number },
  nodePort: number,
): Promise<FwdPath> {
  const inNode = async (argv: string[]): Promise<string> =>
    (await topo.execInNode(entryNode, argv)).stdout;
  const [route] = JSON.parse(await inNode(['ip', '-j', 'route', 'get', backend.ip])) as {
    gateway?: string;
    dev?: string;
  }[];
  if (!route?.gateway || route.dev !== 'fab0') {
    throw new BenchError(
      `xdp-fwd: ${entryNode} does not route ${backend.ip} via a gateway on fab0: ${JSON.stringify(route)}`,
    );
  }
  const neighbours = JSON.parse(
    await inNode(['ip', '-j', 'neigh', 'show', 'to', route.gateway, 'dev', 'fab0']),
  ) as { lladdr?: string }[];
  const nextHopMac = neighbours.find((n) => n.lladdr)?.lladdr;
  if (!nextHopMac) {
    throw new BenchError(`xdp-fwd: ${entryNode} has no neighbour entry for ${route.gateway}`);
  }
  return {
    node: topo.node(entryNode).ip,
    nodePort,
    backend: backend.ip,
    backendPort: backend.port,
    nextHopMac,
    nodeMac: await macOf(topo, { target: { node: entryNode } }, 'fab0'),
  };
}
