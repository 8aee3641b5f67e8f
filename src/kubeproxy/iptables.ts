/**
 * kube-proxy's iptables mode, rule for rule: the `iptables-restore` input its syncProxyRules
 * writes (pkg/proxy/iptables/proxier.go), for a full sync or a partial one (kube-proxy >= 1.26
 * rewrites only the chains of services that changed, and always uses --noflush), plus the jump
 * rules from the built-in chains that it ensures with `iptables -C`/`-I` on every full sync.
 *
 * Output is deterministic: kube-proxy walks a Go map, we walk services in ServicePortName order.
 * docs/kube-proxy-fidelity.md maps every chain to its source and lists the differences.
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
import { iptablesEndpointChain, iptablesServiceChains, isIptablesServiceChain } from './names.js';
import { masqueradeMark, type KubeProxyNode } from './node.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's chain; kube-proxy keeps a copy of its anti-martian rule. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

/** largeClusterEndpointsThreshold: above it kube-proxy drops per-endpoint comments. */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;

export interface IptablesOptions {
  /** --masquerade-all (default false): masquerade all ClusterIP traffic. */
  masqueradeAll?: boolean;
  /** --iptables-masquerade-bit (default 14, mark 0x00004000). */
  masqueradeBit?: number;
  /** --iptables-localhost-nodeports (default true): NodePorts answer on 127.0.0.0/8 too. */
  localhostNodePorts?: boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal is set: no DROP of INVALID packets. */
  conntrackTCPLiberal?: boolean;
  /** iptables supports MASQUERADE --random-fully (every iptables >= 1.6.2; default true). */
  randomFully?: boolean;
}

export interface IptablesSyncScope {
  /**
   * Services (namespace/name) whose Service or EndpointSlices changed since the last successful
   * sync: a partial sync rewrites only their KUBE-SVC/SVL/EXT/FW/SEP chains. Omit for a full sync.
   */
  changedServices?: Iterable<string>;
  /**
   * The nat table's chains before this sync (what `iptables-save -t nat` lists). Service chains
   * among them that this sync does not use are flushed and deleted (`-X`).
   */
  existingNatChains?: Iterable<string>;
}

export interface IptablesRender {
  /** The whole iptables-restore input: *filter then *nat, as kube-proxy writes it. */
  text: string;
  filter: string;
  nat: string;
  full: boolean;
  /** NAT service chains in use after this sync (feed them back as existingNatChains). */
  activeNatChains: string[];
  /** Stale service chains this sync deletes. */
  deletedChains: string[];
  /** More than 1000 endpoints: per-endpoint comments are left out, as kube-proxy does. */
  largeClusterMode: boolean;
  counts: {
    servicePorts: number;
    endpoints: number;
    filterChains: number;
    filterRules: number;
    natChains: number;
    natRules: number;
  };
}

/** A jump from a built-in chain that kube-proxy ensures outside iptables-restore. */
export interface IptablesJump {
  table: 'filter' | 'nat';
  /** The built-in chain the rule is prepended to. */
  chain: string;
  /** The kube-proxy chain it jumps to (created first if missing). */
  target: string;
  comment: string;
  extraArgs: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'] as const;

/**
 * iptablesJumpChains followed by iptablesKubeletJumpChains, in kube-proxy's order. Each is
 * prepended (-I), so in the kernel the last one listed for a chain comes first.
 */
export const IPTABLES_JUMPS: readonly IptablesJump[] = [
  j(
    'filter',
    'INPUT',
    KUBE_EXTERNAL_SERVICES,
    'kubernetes externally-visible service portals',
    NEW,
  ),
  j(
    'filter',
    'FORWARD',
    KUBE_EXTERNAL_SERVICES,
    'kubernetes externally-visible service portals',
    NEW,
  ),
  j('filter', 'INPUT', KUBE_NODEPORTS, 'kubernetes health check service ports', []),
  j('filter', 'FORWARD', KUBE_SERVICES, 'kubernetes service portals', NEW),
  j('filter', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals', NEW),
  j('filter', 'FORWARD', KUBE_FORWARD, 'kubernetes forwarding rules', []),
  j('filter', 'INPUT', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', NEW),
  j('filter', 'OUTPUT', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', NEW),
  j('filter', 'FORWARD', KUBE_PROXY_FIREWALL, 'kubernetes load balancer firewall', NEW),
  j('nat', 'OUTPUT', KUBE_SERVICES, 'kubernetes service portals', []),
  j('nat', 'PREROUTING', KUBE_SERVICES, 'kubernetes service portals', []),
  j('nat', 'POSTROUTING', KUBE_POSTROUTING, 'kubernetes postrouting rules', []),
  j('filter', 'INPUT', KUBE_FIREWALL, '', []),
  j('filter', 'OUTPUT', KUBE_FIREWALL, '', []),
];

function j(
  table: 'filter' | 'nat',
  chain: string,
  target: string,
  comment: string,
  extraArgs: readonly string[],
): IptablesJump {
  return { table, chain, target, comment, extraArgs };
}

/** The rule spec of a jump as argv for `iptables -C/-I/-D CHAIN ...` (no shell quoting). */
export function jumpRuleArgs(jump: IptablesJump): string[] {
  const args = [...jump.extraArgs];
  if (jump.comment !== '') args.push('-m', 'comment', '--comment', jump.comment);
  args.push('-j', jump.target);
  return args;
}

/** computeProbability: fmt.Sprintf("%0.10f", 1/n), with Go's round-half-to-even on ties. */
export function probability(n: number): string {
  const fixed = (1 / n).toFixed(10);
  // 1/n is an exact tie at the 11th decimal only when n = 2^11 (0.00048828125); Go rounds that
  // to even, JavaScript's toFixed rounds it up.
  if (n === 2048) return '0.0004882812';
  return fixed;
}

class Lines {
  readonly lines: string[] = [];
  write(...parts: (string | readonly string[])[]): void {
    this.lines.push(parts.flat().join(' '));
  }
}

/** A buffer that drops what is written: chains of unchanged services in a partial sync. */
const discard = { write(): void {} };
type Writer = Pick<Lines, 'write'>;

/** Full sync: what kube-proxy writes on its first sync, after a failure, and every hour. */
export function renderIptables(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  opts: IptablesOptions = {},
  existingNatChains?: Iterable<string>,
): IptablesRender {
  return render(views, node, opts, existingNatChains ? { existingNatChains } : {});
}

/**
 * Partial sync (kube-proxy >= 1.26): the top-level chains and the filter table are rewritten
 * whole; only the changed services' chains are; stale service chains are deleted.
 */
export function renderIptablesPartial(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  scope: Required<Pick<IptablesSyncScope, 'changedServices'>> & IptablesSyncScope,
  opts: IptablesOptions = {},
): IptablesRender {
  return render(views, node, opts, scope);
}

function render(
  views: readonly ServicePortView[],
  node: KubeProxyNode,
  opts: IptablesOptions,
  scope: IptablesSyncScope,
): IptablesRender {
  const full = scope.changedServices === undefined;
  const changed = new Set(scope.changedServices ?? []);
  const mark = masqueradeMark(opts.masqueradeBit);
  const masqueradeAll = opts.masqueradeAll ?? false;
  const localhostNodePorts = opts.localhostNodePorts ?? true;
  const randomFully = opts.randomFully ?? true;
  const cidr = node.clusterCIDR;

  const filterChains = new Lines();
  const filterRules = new Lines();
  const natChains = new Lines();
  const natRules = new Lines();
  const chainLine = (chain: string): string => `:${chain} - [0:0]`;

  for (const c of [
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_NODEPORTS,
    KUBE_PROXY_FIREWALL,
  ]) {
    filterChains.write(chainLine(c));
  }
  for (const c of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) {
    natChains.write(chainLine(c));
  }

  natRules.write(
    '-A',
    KUBE_POSTROUTING,
    '-m',
    'mark',
    '!',
    '--mark',
    `${mark}/${mark}`,
    '-j',
    'RETURN',
  );
  natRules.write('-A', KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark);
  natRules.write(
    '-A',
    KUBE_POSTROUTING,
    '-m',
    'comment',
    '--comment',
    '"kubernetes service traffic requiring SNAT"',
    '-j',
    'MASQUERADE',
    randomFully ? ['--random-fully'] : [],
  );
  natRules.write('-A', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark);

  if (localhostNodePorts) {
    filterChains.write(chainLine(KUBE_FIREWALL));
    filterRules.write(
      '-A',
      KUBE_FIREWALL,
      '-m',
      'comment',
      '--comment',
      '"block incoming localnet connections"',
      '-d',
      '127.0.0.0/8',
      '!',
      '-s',
      '127.0.0.0/8',
      '-m',
      'conntrack',
      '!',
      '--ctstate',
      'RELATED,ESTABLISHED,DNAT',
      '-j',
      'DROP',
    );
  }

  const plans = planServices(views);
  let totalEndpoints = 0;
  for (const plan of plans) totalEndpoints += sortedEndpoints(plan.view.endpoints).length;
  const largeClusterMode = totalEndpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
  const activeNatChains = new Set<string>();

  for (const plan of plans) {
    const write = full || changed.has(serviceKey(plan.view));
    writeService(plan, {
      filterRules,
      natRules,
      svcChains: write ? natChains : discard,
      svcRules: write ? natRules : discard,
      activeNatChains,
      cidr,
      masqueradeAll,
      largeClusterMode,
    });
  }

  // Delete chains no longer in use (kube-proxy does this on every sync unless in large cluster
  // mode, where it waits for the sync period; see the fidelity doc).
  const deletedChains = [...(scope.existingNatChains ?? [])]
    .filter((c) => isIptablesServiceChain(c) && !activeNatChains.has(c))
    .sort(compare);
  for (const c of deletedChains) {
    natChains.write(chainLine(c));
    natRules.write('-X', c);
  }

  // The tail call to KUBE-NODEPORTS (nodePortAddresses unset: every local address).
  natRules.write(
    '-A',
    KUBE_SERVICES,
    '-m',
    'comment',
    '--comment',
    '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"',
    '-m',
    'addrtype',
    '--dst-type',
    'LOCAL',
    localhostNodePorts ? [] : ['!', '-d', '127.0.0.0/8'],
    '-j',
    KUBE_NODEPORTS,
  );

  if (!(opts.conntrackTCPLiberal ?? false)) {
    filterRules.write('-A', KUBE_FORWARD, '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP');
  }
  filterRules.write(
    '-A',
    KUBE_FORWARD,
    '-m',
    'comment',
    '--comment',
    '"kubernetes forwarding rules"',
    '-m',
    'mark',
    '--mark',
    `${mark}/${mark}`,
    '-j',
    'ACCEPT',
  );
  filterRules.write(
    '-A',
    KUBE_FORWARD,
    '-m',
    'comment',
    '--comment',
    '"kubernetes forwarding conntrack rule"',
    '-m',
    'conntrack',
    '--ctstate',
    'RELATED,ESTABLISHED',
    '-j',
    'ACCEPT',
  );

  const filter = ['*filter', ...filterChains.lines, ...filterRules.lines, 'COMMIT', ''].join('\n');
  const nat = ['*nat', ...natChains.lines, ...natRules.lines, 'COMMIT', ''].join('\n');
  return {
    text: filter + nat,
    filter,
    nat,
    full,
    activeNatChains: [...activeNatChains].sort(compare),
    deletedChains,
    largeClusterMode,
    counts: {
      servicePorts: plans.length,
      endpoints: totalEndpoints,
      filterChains: filterChains.lines.length,
      filterRules: filterRules.lines.length,
      natChains: natChains.lines.length,
      natRules: natRules.lines.length,
    },
  };
}

interface ServiceWriters {
  filterRules: Writer;
  /** KUBE-SERVICES / KUBE-NODEPORTS rules: always written. */
  natRules: Writer;
  /** The service's own chains and their rules: discarded in a partial sync when unchanged. */
  svcChains: Writer;
  svcRules: Writer;
  activeNatChains: Set<string>;
  cidr: string;
  masqueradeAll: boolean;
  largeClusterMode: boolean;
}

function writeService(plan: ServicePortPlan, w: ServiceWriters): void {
  const { view, name, protocol } = plan;
  const chains = iptablesServiceChains(name, protocol);
  const internalTrafficChain = plan.internalPolicyLocal ? chains.local : chains.cluster;
  const externalPolicyChain = plan.externalPolicyLocal ? chains.local : chains.cluster;
  const externalTrafficChain = chains.external;
  const proto = ['-m', protocol, '-p', protocol];
  const port = String(view.port);
  const chainLine = (chain: string): string => `:${chain} - [0:0]`;
  const quoted = (text: string): string => `"${text}"`;

  const noEndpointsComment = quoted(
    plan.hasEndpoints ? `${name} has no local endpoints` : `${name} has no endpoints`,
  );
  const target = (v: 'reject' | 'drop' | null): string => (v === 'drop' ? 'DROP' : 'REJECT');

  // Capture the clusterIP.
  if (plan.hasInternalEndpoints) {
    w.natRules.write(
      '-A',
      KUBE_SERVICES,
      '-m',
      'comment',
      '--comment',
      quoted(`${name} cluster IP`),
      proto,
      '-d',
      view.clusterIP,
      '--dport',
      port,
      '-j',
      internalTrafficChain,
    );
  } else {
    w.filterRules.write(
      '-A',
      KUBE_SERVICES,
      '-m',
      'comment',
      '--comment',
      noEndpointsComment,
      proto,
      '-d',
      view.clusterIP,
      '--dport',
      port,
      '-j',
      target(plan.internalVerdict),
    );
  }

  // Capture externalIPs.
  for (const ip of view.externalIPs) {
    if (plan.hasEndpoints) {
      w.natRules.write(
        '-A',
        KUBE_SERVICES,
        '-m',
        'comment',
        '--comment',
        quoted(`${name} external IP`),
        proto,
        '-d',
        ip,
        '--dport',
        port,
        '-j',
        externalTrafficChain,
      );
    }
    if (!plan.hasExternalEndpoints) {
      w.filterRules.write(
        '-A',
        KUBE_EXTERNAL_SERVICES,
        '-m',
        'comment',
        '--comment',
        noEndpointsComment,
        proto,
        '-d',
        ip,
        '--dport',
        port,
        '-j',
        target(plan.externalVerdict),
      );
    }
  }

  // Capture load-balancer ingress (no loadBalancerSourceRanges in the view: no KUBE-FW-*).
  for (const ip of view.loadBalancerIPs) {
    if (plan.hasEndpoints) {
      w.natRules.write(
        '-A',
        KUBE_SERVICES,
        '-m',
        'comment',
        '--comment',
        quoted(`${name} loadbalancer IP`),
        proto,
        '-d',
        ip,
        '--dport',
        port,
        '-j',
        externalTrafficChain,
      );
    }
  }
  if (!plan.hasExternalEndpoints) {
    for (const ip of view.loadBalancerIPs) {
      w.filterRules.write(
        '-A',
        KUBE_EXTERNAL_SERVICES,
        '-m',
        'comment',
        '--comment',
        noEndpointsComment,
        proto,
        '-d',
        ip,
        '--dport',
        port,
        '-j',
        target(plan.externalVerdict),
      );
    }
  }

  // Capture nodeports.
  const nodePort = view.nodePort ?? 0;
  if (nodePort !== 0) {
    if (plan.hasEndpoints) {
      w.natRules.write(
        '-A',
        KUBE_NODEPORTS,
        '-m',
        'comment',
        '--comment',
        name,
        proto,
        '--dport',
        String(nodePort),
        '-j',
        externalTrafficChain,
      );
    }
    if (!plan.hasExternalEndpoints) {
      w.filterRules.write(
        '-A',
        KUBE_EXTERNAL_SERVICES,
        '-m',
        'comment',
        '--comment',
        noEndpointsComment,
        '-m',
        'addrtype',
        '--dst-type',
        'LOCAL',
        proto,
        '--dport',
        String(nodePort),
        '-j',
        target(plan.externalVerdict),
      );
    }
  }

  const { svcChains, svcRules } = w;

  // Internal traffic: masquerade what does not come from a pod (or everything, masqueradeAll).
  if (plan.hasInternalEndpoints) {
    const args = [
      '-m',
      'comment',
      '--comment',
      quoted(`${name} cluster IP`),
      ...proto,
      '-d',
      view.clusterIP,
      '--dport',
      port,
    ];
    if (w.masqueradeAll) {
      svcRules.write('-A', internalTrafficChain, args, '-j', KUBE_MARK_MASQ);
    } else if (w.cidr !== '') {
      svcRules.write('-A', internalTrafficChain, args, '!', '-s', w.cidr, '-j', KUBE_MARK_MASQ);
    }
  }

  // External traffic: every external destination jumps to KUBE-EXT-*.
  if (plan.usesExternalTrafficChain) {
    svcChains.write(chainLine(externalTrafficChain));
    w.activeNatChains.add(externalTrafficChain);
    if (!plan.externalPolicyLocal) {
      svcRules.write(
        '-A',
        externalTrafficChain,
        '-m',
        'comment',
        '--comment',
        quoted(`masquerade traffic for ${name} external destinations`),
        '-j',
        KUBE_MARK_MASQ,
      );
    } else {
      if (w.cidr !== '') {
        svcRules.write(
          '-A',
          externalTrafficChain,
          '-m',
          'comment',
          '--comment',
          quoted(`pod traffic for ${name} external destinations`),
          '-s',
          w.cidr,
          '-j',
          chains.cluster,
        );
      }
      svcRules.write(
        '-A',
        externalTrafficChain,
        '-m',
        'comment',
        '--comment',
        quoted(`masquerade LOCAL traffic for ${name} external destinations`),
        '-m',
        'addrtype',
        '--src-type',
        'LOCAL',
        '-j',
        KUBE_MARK_MASQ,
      );
      svcRules.write(
        '-A',
        externalTrafficChain,
        '-m',
        'comment',
        '--comment',
        quoted(`route LOCAL traffic for ${name} external destinations`),
        '-m',
        'addrtype',
        '--src-type',
        'LOCAL',
        '-j',
        chains.cluster,
      );
    }
    if (plan.hasExternalEndpoints) {
      svcRules.write('-A', externalTrafficChain, '-j', externalPolicyChain);
    }
  }

  const sepChain = (ep: { ip: string; port: number }): string =>
    iptablesEndpointChain(name, protocol, endpointString(ep));
  const comment = (text: string): string[] =>
    w.largeClusterMode ? [] : ['-m', 'comment', '--comment', text];
  const affinity = view.sessionAffinity;

  const writeServiceToEndpointRules = (
    chain: string,
    endpoints: readonly { ip: string; port: number }[],
  ): void => {
    if (affinity !== null) {
      for (const ep of endpoints) {
        svcRules.write(
          '-A',
          chain,
          comment(quoted(`${name} -> ${endpointString(ep)}`)),
          '-m',
          'recent',
          '--name',
          sepChain(ep),
          '--rcheck',
          '--seconds',
          String(affinity.timeoutSeconds),
          '--reap',
          '-j',
          sepChain(ep),
        );
      }
    }
    endpoints.forEach((ep, i) => {
      const last = i === endpoints.length - 1;
      svcRules.write(
        '-A',
        chain,
        comment(quoted(`${name} -> ${endpointString(ep)}`)),
        last
          ? []
          : [
              '-m',
              'statistic',
              '--mode',
              'random',
              '--probability',
              probability(endpoints.length - i),
            ],
        '-j',
        sepChain(ep),
      );
    });
  };

  const { clusterEndpoints, localEndpoints, allReachableEndpoints } = plan.endpoints;
  if (plan.usesClusterPolicyChain && clusterEndpoints) {
    svcChains.write(chainLine(chains.cluster));
    w.activeNatChains.add(chains.cluster);
    writeServiceToEndpointRules(chains.cluster, clusterEndpoints);
  }
  if (plan.usesLocalPolicyChain && localEndpoints) {
    svcChains.write(chainLine(chains.local));
    w.activeNatChains.add(chains.local);
    writeServiceToEndpointRules(chains.local, localEndpoints);
  }

  // Per-endpoint chains: hairpin masquerade, affinity bookkeeping, DNAT.
  for (const ep of allReachableEndpoints) {
    const chain = sepChain(ep);
    svcChains.write(chainLine(chain));
    w.activeNatChains.add(chain);
    const head = ['-A', chain, ...comment(name)];
    svcRules.write(head, '-s', ep.ip, '-j', KUBE_MARK_MASQ);
    svcRules.write(
      head,
      affinity !== null ? ['-m', 'recent', '--name', chain, '--set'] : [],
      proto,
      '-j',
      'DNAT',
      '--to-destination',
      endpointString(ep),
    );
  }
}
