/**
 * The service proxy each lab node runs: kube-proxy's iptables or nftables mode (the baselines,
 * from src/kubeproxy), sluice (one agent per node, fed through a manifests directory: agents.ts)
 * or none (pod IPs only).
 *
 * Every lab change is a full sync, as kube-proxy does on start and on its periodic resync:
 * iptables-restore --noflush with the nat chains the node holds (so stale service chains are
 * deleted), and for nftables the table state of the previous sync, kept in proxy.json, so stale
 * chains and affinity sets are removed as kube-proxy removes them.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyIptables,
  applyNftables,
  ensureIptablesJumps,
  iptablesChains,
} from '../kubeproxy/apply.js';
import { renderIptables, renderIptablesPartial } from '../kubeproxy/iptables.js';
import type { NftablesState } from '../kubeproxy/nftables.js';
import {
  emptyNftablesState,
  renderNftables,
  renderNftablesPartial,
  renderNftablesStaleChainDeletion,
} from '../kubeproxy/nftables.js';
import type { KubeProxyNode } from '../kubeproxy/node.js';
import type { ClusterState } from '../model/index.js';
import { proxyView } from '../model/index.js';
import { resetAgentFiles, syncAgents } from './agents.js';
import type { LabConfig } from './cluster-file.js';
import type { LabTopology, NodeRecord } from './topology/index.js';

export const PROXY_MODES = ['iptables', 'nftables', 'sluice', 'none'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

type SavedNftState = Record<string, unknown>;

function proxyFile(stateDir: string): string {
  return join(stateDir, 'proxy.json');
}

/** Forgets what the nodes' proxies held: a new lab starts from empty tables. */
export function resetProxyState(stateDir: string): void {
  rmSync(proxyFile(stateDir), { force: true });
  resetAgentFiles(stateDir);
}

function readSaved(stateDir: string): Record<string, SavedNftState> {
  const path = proxyFile(stateDir);
  return existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, SavedNftState>)
    : {};
}

// NftablesState holds Maps and Sets; JSON keeps them as entry arrays.
function saveNft(state: NftablesState): SavedNftState {
  return {
    elements: Object.fromEntries(
      Object.entries(state.elements).map(([k, m]) => [k, [...m.entries()]]),
    ),
    chains: [...state.chains],
    staleChains: [...state.staleChains],
    affinitySets: [...state.affinitySets],
  };
}

function loadNft(saved: SavedNftState | undefined): NftablesState {
  const state = emptyNftablesState();
  if (!saved) return state;
  const elements = saved.elements as Record<string, [string, never][]>;
  for (const name of Object.keys(state.elements) as (keyof NftablesState['elements'])[]) {
    state.elements[name] = new Map(elements[name] ?? []);
  }
  state.chains = new Set(saved.chains as string[]);
  state.staleChains = new Set(saved.staleChains as string[]);
  state.affinitySets = new Set(saved.affinitySets as string[]);
  return state;
}

function kubeProxyNode(lab: LabTopology, node: NodeRecord): KubeProxyNode {
  return { name: node.name, ip: node.ip, clusterCIDR: lab.addressing.podCIDRBase };
}

/** Programs every node's proxy for the given cluster state. */
export async function syncProxies(
  lab: LabTopology,
  stateDir: string,
  state: ClusterState,
  config: Pick<LabConfig, 'proxy' | 'iptablesBackend'>,
): Promise<void> {
  const mode = config.proxy;
  const backend = config.iptablesBackend ?? 'default';
  if (mode === 'none') return;
  if (mode === 'sluice') return syncAgents(lab, stateDir, state);
  if (mode === 'iptables') {
    // One node after the other: iptables takes the host-wide /run/xtables.lock, which every
    // lab node shares (a real node's kube-proxy has it to itself), and a large restore holds
    // it longer than kube-proxy's -w 5 wait.
    for (const node of lab.nodes()) {
      const views = proxyView(state, node.name);
      await ensureIptablesJumps(node.netns, { backend });
      const existing = await iptablesChains(node.netns, 'nat', { backend });
      const rules = renderIptables(views, kubeProxyNode(lab, node), {}, existing).text;
      await applyIptables(node.netns, rules, { backend });
    }
    return;
  }
  const saved = readSaved(stateDir);
  await Promise.all(
    lab.nodes().map(async (node) => {
      const views = proxyView(state, node.name);
      const kpNode = kubeProxyNode(lab, node);
      let previous = loadNft(saved[node.name]);
      if (previous.staleChains.size > 0) {
        const deletion = renderNftablesStaleChainDeletion(previous);
        if (deletion.script) await applyNftables(node.netns, deletion.script);
        previous = deletion.state;
      }
      const render = renderNftables(
        views,
        kpNode,
        { firstSync: saved[node.name] === undefined },
        previous,
      );
      await applyNftables(node.netns, render.script);
      saved[node.name] = saveNft(render.state);
    }),
  );
  writeFileSync(proxyFile(stateDir), JSON.stringify(saved));
}

/**
 * Programs every node's proxy for a change of the given services' EndpointSlices (or Services)
 * only, as kube-proxy >= 1.26 does between its full syncs: iptables-restore --noflush of the
 * top-level chains and the changed services' chains (stale chains are left for the next full
 * sync, as kube-proxy leaves them until its periodic cleanup), or an nft transaction of the
 * map elements that differ and the changed services' chains. The sluice agents get the new
 * cluster and program their own diff. The previous sync must have been made by syncProxies or
 * syncProxiesPartial (the nodes hold its jumps and table).
 */
export async function syncProxiesPartial(
  lab: LabTopology,
  stateDir: string,
  state: ClusterState,
  config: Pick<LabConfig, 'proxy' | 'iptablesBackend'>,
  changedServices: readonly string[],
): Promise<void> {
  const mode = config.proxy;
  if (mode === 'none') return;
  if (mode === 'sluice') return syncAgents(lab, stateDir, state);
  if (mode === 'iptables') {
    const backend = config.iptablesBackend ?? 'default';
    for (const node of lab.nodes()) {
      const views = proxyView(state, node.name);
      const rules = renderIptablesPartial(views, kubeProxyNode(lab, node), { changedServices });
      await applyIptables(node.netns, rules.text, { backend });
    }
    return;
  }
  const saved = readSaved(stateDir);
  await Promise.all(
    lab.nodes().map(async (node) => {
      let previous = loadNft(saved[node.name]);
      if (previous.staleChains.size > 0) {
        const deletion = renderNftablesStaleChainDeletion(previous);
        if (deletion.script) await applyNftables(node.netns, deletion.script);
        previous = deletion.state;
      }
      const views = proxyView(state, node.name);
      const render = renderNftablesPartial(views, kubeProxyNode(lab, node), {
        changedServices,
        previous,
      });
      if (render.script) await applyNftables(node.netns, render.script);
      saved[node.name] = saveNft(render.state);
    }),
  );
  writeFileSync(proxyFile(stateDir), JSON.stringify(saved));
}
