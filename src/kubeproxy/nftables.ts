/**
 * kube-proxy's nftables mode (KEP-3866): one table `ip kube-proxy`, service dispatch through
 * verdict maps, one chain per service port policy and per endpoint. This renders the `nft -f`
 * transaction kube-proxy's knftables code sends (pkg/proxy/nftables/proxier.go setupNFTables and
 * syncProxyRules), for a full sync (table, base chains and every map refilled) or a partial one
 * (only the map elements that differ, only the chains of changed services).
 *
 * Output is deterministic (services in ServicePortName order). The state each render returns is
 * what the table holds after the transaction; a partial sync diffs against it, as kube-proxy's
 * nftElementStorage does.
 */
import type { ServicePortView } from '../model/types.js';
import {
  compare,
  endpointString,
  planServices,
  serviceKey,
  sortedEndpoints,
  type ServicePortPlan,
} from './endpoints.js';
import {
  isNftablesAffinitySet,
  isNftablesServiceChain,
  nftablesEndpointNames,
  nftablesServiceChains,
} from './names.js';
import { masqueradeMark, type KubeProxyNode } from './node.js';

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'kube-proxy';
const T = `${NFT_FAMILY} ${NFT_TABLE}`;

// Chains, sets and maps kube-proxy creates in setupNFTables.
export const FILTER_PREROUTING = 'filter-prerouting';
export const FILTER_INPUT = 'filter-input';
export const FILTER_FORWARD = 'filter-forward';
export const FILTER_OUTPUT = 'filter-output';
export const FILTER_OUTPUT_POST_DNAT = 'filter-output-post-dnat';
export const NAT_PREROUTING = 'nat-prerouting';
export const NAT_OUTPUT = 'nat-output';
export const NAT_POSTROUTING = 'nat-postrouting';
export const SERVICES_CHAIN = 'services';
export const SERVICE_IPS_MAP = 'service-ips';
export const SERVICE_NODEPORTS_MAP = 'service-nodeports';
export const NODEPORT_IPS_SET = 'nodeport-ips';
export const CLUSTER_IPS_SET = 'cluster-ips';
export const SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const NO_ENDPOINT_SERVICES_MAP = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS_MAP = 'no-endpoint-nodeports';
export const REJECT_CHAIN = 'reject-chain';
export const CLUSTER_IPS_CHECK = 'cluster-ips-check';
export const FIREWALL_IPS_MAP = 'firewall-ips';
export const FIREWALL_CHECK = 'firewall-check';
export const MARK_MASQ_CHAIN = 'mark-for-masquerade';
export const MASQUERADING_CHAIN = 'masquerading';

/**
 * nftablesBaseChains. knftables writes named priorities as numbers for the ip family:
 * dstnat = -100, srcnat = 100; kube-proxy's filter chains run at dstnat-10 (before DNAT).
 */
export const NFT_BASE_CHAINS = [
  { name: FILTER_PREROUTING, type: 'filter', hook: 'prerouting', priority: -110 },
  { name: FILTER_INPUT, type: 'filter', hook: 'input', priority: -110 },
  { name: FILTER_FORWARD, type: 'filter', hook: 'forward', priority: -110 },
  { name: FILTER_OUTPUT, type: 'filter', hook: 'output', priority: -110 },
  { name: FILTER_OUTPUT_POST_DNAT, type: 'filter', hook: 'output', priority: -90 },
  { name: NAT_PREROUTING, type: 'nat', hook: 'prerouting', priority: -100 },
  { name: NAT_OUTPUT, type: 'nat', hook: 'output', priority: -100 },
  { name: NAT_POSTROUTING, type: 'nat', hook: 'postrouting', priority: 100 },
] as const;

/** nftablesJumpChains: [destination, source base chain, match]. */
export const NFT_JUMP_CHAINS: readonly (readonly [string, string, string])[] = [
  [NODEPORT_ENDPOINTS_CHECK, FILTER_INPUT, 'ct state new'],
  [SERVICE_ENDPOINTS_CHECK, FILTER_INPUT, 'ct state new'],
  [SERVICE_ENDPOINTS_CHECK, FILTER_FORWARD, 'ct state new'],
  [SERVICE_ENDPOINTS_CHECK, FILTER_OUTPUT, 'ct state new'],
  [FIREWALL_CHECK, FILTER_PREROUTING, 'ct state new'],
  [FIREWALL_CHECK, FILTER_OUTPUT, 'ct state new'],
  [SERVICES_CHAIN, NAT_OUTPUT, ''],
  [SERVICES_CHAIN, NAT_PREROUTING, ''],
  [MASQUERADING_CHAIN, NAT_POSTROUTING, ''],
  [CLUSTER_IPS_CHECK, FILTER_FORWARD, 'ct state new'],
  [CLUSTER_IPS_CHECK, FILTER_OUTPUT_POST_DNAT, 'ct state new'],
];

/** The sets and maps whose elements kube-proxy tracks (nftElementStorage), in its order. */
export const NFT_CONTAINERS = [
  { name: CLUSTER_IPS_SET, kind: 'set' },
  { name: SERVICE_IPS_MAP, kind: 'map' },
  { name: FIREWALL_IPS_MAP, kind: 'map' },
  { name: NO_ENDPOINT_SERVICES_MAP, kind: 'map' },
  { name: NO_ENDPOINT_NODEPORTS_MAP, kind: 'map' },
  { name: SERVICE_NODEPORTS_MAP, kind: 'map' },
] as const;
export type NftContainer = (typeof NFT_CONTAINERS)[number]['name'];

export interface NftablesOptions {
  /** --masquerade-all (default false). */
  masqueradeAll?: boolean;
  /** --nftables-masquerade-bit (default 14). */
  masqueradeBit?: number;
  /**
   * --nodeport-addresses: nftables mode defaults to "primary" (the node IP, via the
   * nodeport-ips set); "all" matches every local address except 127.0.0.0/8.
   */
  nodePortAddresses?: 'primary' | 'all';
  /**
   * The cluster's ServiceCIDRs (kube-proxy learns them from ServiceCIDR objects): traffic to an
   * unallocated ClusterIP in them is dropped. Empty: no such rule.
   */
  serviceCIDRs?: readonly string[];
  /**
   * kube-proxy's first sync after start also deletes and recreates the base chains (so a
   * changed priority can be applied). Default true for a full render.
   */
  firstSync?: boolean;
}

export interface NftElement {
  key: readonly string[];
  value?: readonly string[];
  comment?: string;
}

/** What the kube-proxy table holds after a transaction (the input of the next partial sync). */
export interface NftablesState {
  /** Per set/map: element key (parts joined with " . ") to element. */
  elements: Record<NftContainer, Map<string, NftElement>>;
  /** Service and endpoint chains present in the table, stale ones included until deleted. */
  chains: Set<string>;
  /** Stale chains: flushed and unreferenced, to delete in a later transaction. */
  staleChains: Set<string>;
  /** Affinity sets present in the table. */
  affinitySets: Set<string>;
}

export interface NftablesRender {
  /** The `nft -f` input. */
  script: string;
  full: boolean;
  state: NftablesState;
  /** Chains this sync flushed because nothing uses them any more (delete them later). */
  staleChains: string[];
  counts: {
    servicePorts: number;
    endpoints: number;
    /** Commands in the transaction (one per line). */
    commands: number;
    chains: number;
    rules: number;
    elements: number;
  };
}

export function emptyNftablesState(): NftablesState {
  return {
    elements: {
      'cluster-ips': new Map(),
      'service-ips': new Map(),
      'firewall-ips': new Map(),
      'no-endpoint-services': new Map(),
      'no-endpoint-nodeports': new Map(),
      'service-nodeports': new Map(),
    },
    chains: new Set(),
    staleChains: new Set(),
    affinitySets: new Set(),
  };
}

function cloneState(s: NftablesState): NftablesState {
  const elements = emptyNftablesState().elements;
  for (const { name } of NFT_CONTAINERS) elements[name] = new Map(s.elements[name]);
  return {
    elements,
    chains: new Set(s.chains),
    staleChains: new Set(s.staleChains),
    affinitySets: new Set(s.affinitySets),
  };
}

/** Go's %q for the plain ASCII comments kube-proxy writes. */
function q(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

class Transaction {
  readonly lines: string[] = [];
  rules = 0;
  elements = 0;
  private readonly created = new Set<string>();

  add(line: string): void {
    this.lines.push(line);
  }
  rule(chain: string, rule: string, comment?: string): void {
    this.rules++;
    this.add(
      `add rule ${T} ${chain} ${rule}${comment === undefined ? '' : ` comment ${q(comment)}`}`,
    );
  }
  /** ensureChain: add + flush once per transaction; skip only records the chain as used. */
  ensureChain(chain: string, active: Set<string>, skipCreation = false): void {
    if (active.has(chain)) return;
    active.add(chain);
    if (skipCreation || this.created.has(chain)) return;
    this.created.add(chain);
    this.add(`add chain ${T} ${chain}`);
    this.add(`flush chain ${T} ${chain}`);
  }
  element(verb: 'add' | 'delete', container: string, e: NftElement): void {
    let line = `${verb} element ${T} ${container} { ${e.key.join(' . ')}`;
    if (verb === 'add') {
      this.elements++;
      if (e.comment !== undefined) line += ` comment ${q(e.comment)}`;
      if (e.value !== undefined) line += ` : ${e.value.join(' . ')}`;
    }
    this.add(`${line} }`);
  }
}

/** nftElementStorage: elements known to be in the kernel, diffed against what a sync wants. */
class ElementStorage {
  private readonly leftover: Set<string>;
  constructor(
    readonly name: NftContainer,
    readonly elements: Map<string, NftElement>,
  ) {
    this.leftover = new Set(elements.keys());
  }
  ensure(tx: Transaction, e: NftElement): void {
    const key = e.key.join(' . ');
    const existing = this.elements.get(key);
    if (existing) {
      if ((existing.value ?? []).join(' . ') !== (e.value ?? []).join(' . ')) {
        tx.element('delete', this.name, e);
        tx.element('add', this.name, e);
        this.elements.set(key, e);
      }
      this.leftover.delete(key);
    } else {
      tx.element('add', this.name, e);
      this.elements.set(key, e);
    }
  }
  cleanup(tx: Transaction): void {
    for (const key of [...this.leftover].sort(compare)) {
      tx.element('delete', this.name, { key: key.split(' . ') });
      this.elements.delete(key);
    }
    this.leftover.clear();
  }
}

/**
 * Full sync: create (or re-create) the table's skeleton, flush every map and refill it, rewrite
 * every chain. `previous` (what the table held) lets stale chains and affinity sets be removed.
 */
export function renderNftables(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  opts: NftablesOptions = {},
  previous?: NftablesState,
): NftablesRender {
  return render(views, node, opts, previous ?? emptyNftablesState(), undefined);
}

/**
 * Partial sync: no skeleton, map elements added/deleted only where they differ from `previous`,
 * chains rewritten only for the changed services (namespace/name), stale ones flushed.
 */
export function renderNftablesPartial(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  scope: { changedServices: Iterable<string>; previous: NftablesState },
  opts: NftablesOptions = {},
): NftablesRender {
  return render(views, node, opts, scope.previous, new Set(scope.changedServices));
}

/**
 * kube-proxy deletes stale chains in a separate transaction at the start of a later sync (at
 * least a second after flushing them: kernels before 6.2 notice an unreferenced chain late).
 */
export function renderNftablesStaleChainDeletion(state: NftablesState): {
  script: string;
  state: NftablesState;
} {
  const next = cloneState(state);
  const lines: string[] = [];
  for (const chain of [...state.staleChains].sort(compare)) {
    lines.push(`delete chain ${T} ${chain}`);
    next.chains.delete(chain);
    next.staleChains.delete(chain);
  }
  return { script: lines.length > 0 ? `${lines.join('\n')}\n` : '', state: next };
}

function setup(tx: Transaction, node: KubeProxyNode, opts: NftablesOptions, mark: string): void {
  const matchAll = (opts.nodePortAddresses ?? 'primary') === 'all';
  const noLocalhost = 'ip daddr != 127.0.0.0/8';

  tx.add(`add table ${T} { comment ${q('rules for kube-proxy')} ; }`);
  if (opts.firstSync ?? true) {
    for (const bc of NFT_BASE_CHAINS) {
      tx.add(`add chain ${T} ${bc.name}`);
      tx.add(`delete chain ${T} ${bc.name}`);
    }
  }
  for (const bc of NFT_BASE_CHAINS) {
    tx.add(
      `add chain ${T} ${bc.name} { type ${bc.type} hook ${bc.hook} priority ${bc.priority} ; }`,
    );
    tx.add(`flush chain ${T} ${bc.name}`);
  }

  const created = new Set<string>();
  for (const [dst, src, match] of NFT_JUMP_CHAINS) {
    tx.ensureChain(dst, created);
    tx.rule(src, `${match === '' ? '' : `${match} `}jump ${dst}`);
  }
  for (const chain of [SERVICES_CHAIN, CLUSTER_IPS_CHECK, MASQUERADING_CHAIN, MARK_MASQ_CHAIN]) {
    tx.ensureChain(chain, created);
  }

  tx.rule(MARK_MASQ_CHAIN, `mark set mark or ${mark}`);
  tx.rule(MASQUERADING_CHAIN, `mark and ${mark} == 0 return`);
  tx.rule(MASQUERADING_CHAIN, `mark set mark xor ${mark}`);
  tx.rule(MASQUERADING_CHAIN, 'masquerade fully-random');

  tx.add(
    `add set ${T} ${CLUSTER_IPS_SET} { type ipv4_addr ; comment ${q('Active ClusterIPs')} ; }`,
  );
  tx.rule(
    CLUSTER_IPS_CHECK,
    `ip daddr @${CLUSTER_IPS_SET} reject`,
    'Reject traffic to invalid ports of ClusterIPs',
  );
  const serviceCIDRs = opts.serviceCIDRs ?? [];
  if (serviceCIDRs.length > 0) {
    tx.rule(
      CLUSTER_IPS_CHECK,
      `ip daddr { ${serviceCIDRs.join(',')} } drop`,
      'Drop traffic to unallocated ClusterIPs',
    );
  }

  tx.add(
    `add set ${T} ${NODEPORT_IPS_SET} { type ipv4_addr ; comment ${q('IPs that accept NodePort traffic')} ; }`,
  );
  if (matchAll) {
    tx.add(`delete set ${T} ${NODEPORT_IPS_SET}`);
  } else {
    tx.add(`flush set ${T} ${NODEPORT_IPS_SET}`);
    tx.element('add', NODEPORT_IPS_SET, { key: [node.ip] });
  }

  const vmapType = 'ipv4_addr . inet_proto . inet_service : verdict';
  const portVmapType = 'inet_proto . inet_service : verdict';
  tx.add(
    `add map ${T} ${NO_ENDPOINT_SERVICES_MAP} { type ${vmapType} ; comment ${q('vmap to drop or reject packets to services with no endpoints')} ; }`,
  );
  tx.add(
    `add map ${T} ${NO_ENDPOINT_NODEPORTS_MAP} { type ${portVmapType} ; comment ${q('vmap to drop or reject packets to service nodeports with no endpoints')} ; }`,
  );
  tx.add(
    `add chain ${T} ${REJECT_CHAIN} { comment ${q('helper for @no-endpoint-services / @no-endpoint-nodeports')} ; }`,
  );
  tx.add(`flush chain ${T} ${REJECT_CHAIN}`);
  tx.rule(REJECT_CHAIN, 'reject');
  tx.rule(
    SERVICE_ENDPOINTS_CHECK,
    `ip daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES_MAP}`,
  );
  tx.rule(
    NODEPORT_ENDPOINTS_CHECK,
    matchAll
      ? `${noLocalhost} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`
      : `ip daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`,
  );

  tx.add(
    `add map ${T} ${FIREWALL_IPS_MAP} { type ${vmapType} ; comment ${q('destinations that are subject to LoadBalancerSourceRanges')} ; }`,
  );
  tx.ensureChain(FIREWALL_CHECK, created);
  tx.rule(FIREWALL_CHECK, `ip daddr . meta l4proto . th dport vmap @${FIREWALL_IPS_MAP}`);

  tx.add(
    `add map ${T} ${SERVICE_IPS_MAP} { type ${vmapType} ; comment ${q('ClusterIP, ExternalIP and LoadBalancer IP traffic')} ; }`,
  );
  tx.add(
    `add map ${T} ${SERVICE_NODEPORTS_MAP} { type ${portVmapType} ; comment ${q('NodePort traffic')} ; }`,
  );
  tx.rule(SERVICES_CHAIN, `ip daddr . meta l4proto . th dport vmap @${SERVICE_IPS_MAP}`);
  tx.rule(
    SERVICES_CHAIN,
    matchAll
      ? `fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`
      : `ip daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`,
  );

  // Reset the containers: flush them; every element is added again.
  for (const c of NFT_CONTAINERS) tx.add(`flush ${c.kind} ${T} ${c.name}`);
}

function render(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  opts: NftablesOptions,
  previous: NftablesState,
  changed: Set<string> | undefined,
): NftablesRender {
  const full = changed === undefined;
  const mark = masqueradeMark(opts.masqueradeBit);
  const tx = new Transaction();
  const state = cloneState(previous);
  if (full) {
    setup(tx, node, opts, mark);
    for (const { name } of NFT_CONTAINERS) state.elements[name] = new Map();
  }
  const storage = Object.fromEntries(
    NFT_CONTAINERS.map(({ name }) => [name, new ElementStorage(name, state.elements[name])]),
  ) as Record<NftContainer, ElementStorage>;

  const activeChains = new Set<string>();
  const activeAffinitySets = new Set<string>();
  const plans = planServices(views);
  let totalEndpoints = 0;
  for (const plan of plans) {
    totalEndpoints += sortedEndpoints(plan.view.endpoints).length;
    const skip = !full && !changed.has(serviceKey(plan.view));
    writeService(plan, { tx, storage, activeChains, activeAffinitySets, skip, node, opts });
  }

  // Stale chains: flush now, delete in a later transaction.
  const staleChains: string[] = [];
  for (const chain of [...previous.chains].sort(compare)) {
    if (!isNftablesServiceChain(chain)) continue;
    if (!activeChains.has(chain)) {
      tx.add(`flush chain ${T} ${chain}`);
      staleChains.push(chain);
    }
  }
  // Stale affinity sets can go at once.
  for (const set of [...previous.affinitySets].sort(compare)) {
    if (isNftablesAffinitySet(set) && !activeAffinitySets.has(set)) {
      tx.add(`delete set ${T} ${set}`);
    }
  }
  for (const { name } of NFT_CONTAINERS) storage[name].cleanup(tx);

  state.chains = new Set([...activeChains, ...staleChains]);
  state.staleChains = new Set(staleChains);
  state.affinitySets = activeAffinitySets;
  const script = tx.lines.length > 0 ? `${tx.lines.join('\n')}\n` : '';
  return {
    script,
    full,
    state,
    staleChains,
    counts: {
      servicePorts: plans.length,
      endpoints: totalEndpoints,
      commands: tx.lines.length,
      chains: activeChains.size,
      rules: tx.rules,
      elements: tx.elements,
    },
  };
}

interface ServiceContext {
  tx: Transaction;
  storage: Record<NftContainer, ElementStorage>;
  activeChains: Set<string>;
  activeAffinitySets: Set<string>;
  /** Partial sync and this service did not change: only its map elements are checked. */
  skip: boolean;
  node: KubeProxyNode;
  opts: NftablesOptions;
}

function writeService(plan: ServicePortPlan, c: ServiceContext): void {
  const { tx, storage, skip } = c;
  const { view, name, protocol } = plan;
  const chains = nftablesServiceChains(view.namespace, view.serviceName, protocol, view.portName);
  const epNames = (ep: { ip: string; port: number }): { chain: string; affinitySet: string } =>
    nftablesEndpointNames(
      view.namespace,
      view.serviceName,
      protocol,
      view.portName,
      ep.ip,
      ep.port,
    );
  const { clusterEndpoints, localEndpoints, allReachableEndpoints } = plan.endpoints;
  const affinity = view.sessionAffinity;
  const port = String(view.port);

  for (const ep of allReachableEndpoints) {
    const names = epNames(ep);
    tx.ensureChain(names.chain, c.activeChains, skip);
    if (affinity !== null) c.activeAffinitySets.add(names.affinitySet);
  }
  if (plan.usesClusterPolicyChain) tx.ensureChain(chains.cluster, c.activeChains, skip);
  if (plan.usesLocalPolicyChain) tx.ensureChain(chains.local, c.activeChains, skip);
  const internalTrafficChain = plan.internalPolicyLocal ? chains.local : chains.cluster;
  const externalPolicyChain = plan.externalPolicyLocal ? chains.local : chains.cluster;
  const externalTrafficChain = chains.external;
  if (plan.usesExternalTrafficChain) tx.ensureChain(externalTrafficChain, c.activeChains, skip);

  const verdict = (v: 'reject' | 'drop' | null): string =>
    v === 'drop' ? 'drop' : `goto ${REJECT_CHAIN}`;

  // Capture the clusterIP.
  storage['cluster-ips'].ensure(tx, { key: [view.clusterIP] });
  if (plan.hasInternalEndpoints) {
    storage['service-ips'].ensure(tx, {
      key: [view.clusterIP, protocol, port],
      value: [`goto ${internalTrafficChain}`],
    });
  } else {
    storage['no-endpoint-services'].ensure(tx, {
      key: [view.clusterIP, protocol, port],
      value: [verdict(plan.internalVerdict)],
      comment: name,
    });
  }

  // Capture externalIPs.
  for (const ip of view.externalIPs) {
    if (plan.hasEndpoints) {
      storage['service-ips'].ensure(tx, {
        key: [ip, protocol, port],
        value: [`goto ${externalTrafficChain}`],
      });
    }
    if (!plan.hasExternalEndpoints) {
      storage['no-endpoint-services'].ensure(tx, {
        key: [ip, protocol, port],
        value: [verdict(plan.externalVerdict)],
        comment: name,
      });
    }
  }

  // Capture load-balancer ingress (no loadBalancerSourceRanges in the view: no firewall chain).
  for (const ip of view.loadBalancerIPs) {
    if (plan.hasEndpoints) {
      storage['service-ips'].ensure(tx, {
        key: [ip, protocol, port],
        value: [`goto ${externalTrafficChain}`],
      });
    }
  }
  if (!plan.hasExternalEndpoints) {
    for (const ip of view.loadBalancerIPs) {
      storage['no-endpoint-services'].ensure(tx, {
        key: [ip, protocol, port],
        value: [verdict(plan.externalVerdict)],
        comment: name,
      });
    }
  }

  // Capture nodeports.
  const nodePort = view.nodePort ?? 0;
  if (nodePort !== 0) {
    if (plan.hasEndpoints) {
      storage['service-nodeports'].ensure(tx, {
        key: [protocol, String(nodePort)],
        value: [`goto ${externalTrafficChain}`],
      });
    }
    if (!plan.hasExternalEndpoints) {
      storage['no-endpoint-nodeports'].ensure(tx, {
        key: [protocol, String(nodePort)],
        value: [verdict(plan.externalVerdict)],
        comment: name,
      });
    }
  }

  if (skip) return;

  const cidr = c.node.clusterCIDR;
  if (plan.hasInternalEndpoints) {
    const match = `ip daddr ${view.clusterIP} ${protocol} dport ${port}`;
    if (c.opts.masqueradeAll ?? false) {
      tx.rule(internalTrafficChain, `${match} jump ${MARK_MASQ_CHAIN}`);
    } else if (cidr !== '') {
      tx.rule(internalTrafficChain, `${match} ip saddr != ${cidr} jump ${MARK_MASQ_CHAIN}`);
    }
  }

  if (plan.usesExternalTrafficChain) {
    if (!plan.externalPolicyLocal) {
      tx.rule(externalTrafficChain, `jump ${MARK_MASQ_CHAIN}`);
    } else {
      if (cidr !== '') {
        tx.rule(
          externalTrafficChain,
          `ip saddr ${cidr} goto ${chains.cluster}`,
          'short-circuit pod traffic',
        );
      }
      tx.rule(
        externalTrafficChain,
        `fib saddr type local jump ${MARK_MASQ_CHAIN}`,
        'masquerade local traffic',
      );
      tx.rule(
        externalTrafficChain,
        `fib saddr type local goto ${chains.cluster}`,
        'short-circuit local traffic',
      );
    }
    if (plan.hasExternalEndpoints) tx.rule(externalTrafficChain, `goto ${externalPolicyChain}`);
  }

  if (affinity !== null) {
    for (const ep of allReachableEndpoints) {
      tx.add(
        `add set ${T} ${epNames(ep).affinitySet} { type ipv4_addr ; flags dynamic,timeout ; timeout ${affinity.timeoutSeconds}s ; }`,
      );
    }
  }

  const writeServiceToEndpointRules = (
    chain: string,
    endpoints: readonly { ip: string; port: number }[],
  ): void => {
    if (affinity !== null) {
      for (const ep of endpoints) {
        const names = epNames(ep);
        tx.rule(chain, `ip saddr @${names.affinitySet} goto ${names.chain}`);
      }
    }
    const elements = endpoints.map((ep, i) => `${i} : goto ${epNames(ep).chain}`).join(' , ');
    tx.rule(chain, `numgen random mod ${endpoints.length} vmap { ${elements} }`);
  };
  if (plan.usesClusterPolicyChain && clusterEndpoints) {
    writeServiceToEndpointRules(chains.cluster, clusterEndpoints);
  }
  if (plan.usesLocalPolicyChain && localEndpoints) {
    writeServiceToEndpointRules(chains.local, localEndpoints);
  }

  for (const ep of allReachableEndpoints) {
    const names = epNames(ep);
    tx.rule(names.chain, `ip saddr ${ep.ip} jump ${MARK_MASQ_CHAIN}`);
    if (affinity !== null) tx.rule(names.chain, `update @${names.affinitySet} { ip saddr }`);
    tx.rule(names.chain, `meta l4proto ${protocol} dnat to ${endpointString(ep)}`);
  }
}
