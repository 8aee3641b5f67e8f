/**
 * Reading a node's datapath back from its pins, for `sluice service list`: the maps are opened
 * by path (BTF-checked against the codecs) and resolved frontend -> slots -> backends, exactly
 * as the programs resolve them, so what is listed is what the kernel would do.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Codec } from '../bpf/codec.js';
import { openPinnedMap } from '../bpf/pinned.js';
import type { PinnedMap } from '../bpf/pinned.js';
import { LbBackendFlag, LbServiceFlag, lbMaps } from '../datapath/lb.js';
import { CtDir, CtFlag, lbTcSpec } from '../datapath/lb-tc.js';
import { AgentError } from './errors.js';
import { compareAddressPort, serviceFlagNames } from './dump.js';
import { protoName, scopeName } from './plan.js';
import type { ProgrammedState } from './programmed.js';
import { programmedFromEntries } from './programmed.js';

const NEEDED = ['lb4_services', 'lb_slots', 'lb4_backends', 'lb4_reverse_nat'] as const;

/** The four programmed maps pinned under pinRoot, read in full. */
export function readPinnedProgrammed(pinRoot: string): ProgrammedState {
  const missing = NEEDED.filter((name) => !existsSync(join(pinRoot, name)));
  if (missing.length > 0) {
    throw new AgentError(
      'AGENT_DATAPATH',
      `no sluice datapath pinned at ${pinRoot} (missing ${missing.join(', ')}): is the agent of this node running?`,
    );
  }
  const opened: PinnedMap<unknown, unknown>[] = [];
  const open = <K, V>(name: string, spec: { key: Codec<K>; value: Codec<V> }) => {
    const map = openPinnedMap(join(pinRoot, name), spec);
    opened.push(map);
    return map;
  };
  try {
    return programmedFromEntries({
      services: open('lb4_services', lbMaps.lb4_services).lookupBatch(),
      slots: open('lb_slots', lbMaps.lb_slots).lookupBatch(),
      backends: open('lb4_backends', lbMaps.lb4_backends).lookupBatch(),
      revNat: open('lb4_reverse_nat', lbMaps.lb4_reverse_nat).lookupBatch(),
    });
  } finally {
    for (const m of opened) m.close();
  }
}

export interface ListedBackend {
  slot: number;
  id: number;
  address: string;
  port: number;
  protocol: string;
  /** active, terminating, or missing (a slot naming no backend: a broken datapath). */
  state: 'active' | 'terminating' | 'missing';
  local: boolean;
  node: string;
}

export interface ListedFrontend {
  /** The frontend's reverse-NAT id: unique per frontend, like Cilium's service ID. */
  id: number;
  address: string;
  port: number;
  protocol: string;
  scope: string;
  type: string[];
  serviceId: number;
  affinityTimeout: number;
  /** With no backend: reject (no endpoint anywhere) or drop (Local policy, none on this node). */
  whenEmpty: 'reject' | 'drop';
  backends: ListedBackend[];
}

export function listFrontends(state: ProgrammedState): ListedFrontend[] {
  const entries = [...state.services.values()].sort(
    (a, b) =>
      compareAddressPort([a.key.address, a.key.dport], [b.key.address, b.key.dport]) ||
      a.key.proto - b.key.proto ||
      a.key.scope - b.key.scope,
  );
  return entries.map(({ key, value }) => {
    const slots = state.slots.get(value.service_id);
    const backends: ListedBackend[] = [];
    for (let slot = 1; slot <= value.backend_count; slot++) {
      const id = slots?.get(slot) ?? 0;
      const b = state.backends.get(id);
      backends.push(
        b
          ? {
              slot,
              id,
              address: b.address,
              port: b.port,
              protocol: protoName(b.proto),
              state: b.flags & LbBackendFlag.TERMINATING ? 'terminating' : 'active',
              local: (b.flags & LbBackendFlag.LOCAL) !== 0,
              node: b.node_address,
            }
          : {
              slot,
              id,
              address: '',
              port: 0,
              protocol: '',
              state: 'missing',
              local: false,
              node: '',
            },
      );
    }
    return {
      id: value.rev_nat_id,
      address: key.address,
      port: key.dport,
      protocol: protoName(key.proto),
      scope: scopeName(key.scope),
      type: serviceFlagNames(value.flags).split(','),
      serviceId: value.service_id,
      affinityTimeout: value.affinity_timeout,
      whenEmpty: value.flags & LbServiceFlag.LOCAL_ONLY ? 'drop' : 'reject',
      backends,
    };
  });
}

/** `cilium service list`-like table. */
export function formatFrontends(node: string, frontends: readonly ListedFrontend[]): string {
  const rows: string[][] = [['ID', 'FRONTEND', 'SCOPE', 'TYPE', 'SERVICE', 'BACKENDS']];
  for (const f of frontends) {
    const head = [
      String(f.id),
      `${f.address}:${f.port}/${f.protocol}`,
      f.scope,
      f.type.join(',') + (f.affinityTimeout ? ` (affinity ${f.affinityTimeout}s)` : ''),
      String(f.serviceId),
    ];
    if (f.backends.length === 0) {
      rows.push([...head, `(none: ${f.whenEmpty})`]);
      continue;
    }
    f.backends.forEach((b, i) => {
      const what =
        b.state === 'missing'
          ? `${b.slot} => backend ${b.id} MISSING`
          : `${b.slot} => ${b.address}:${b.port}/${b.protocol} (${b.state}${b.local ? ', local' : ''})`;
      rows.push(i === 0 ? [...head, what] : ['', '', '', '', '', what]);
    });
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  return `node ${node}\n${lines.join('\n')}\n`;
}

export interface ListedFlow {
  protocol: string;
  client: string;
  frontend: string;
  backend: string;
  /** The source the backend sees: the node's address and port when SNATed. */
  source: string;
  snat: boolean;
  state: string;
  /** Seconds left; negative once dead (the datapath ignores it, the LRU recycles it). */
  expiresIn: number;
  backendId: number;
  revNatId: number;
}

const CT_STATES = ['NONE', 'SYN_SENT', 'ESTABLISHED', 'FIN', 'CLOSE'];

/** One line per flow (the FORWARD entry; its REPLY twin holds the same values). */
export function readPinnedConntrack(pinRoot: string, nowNs: bigint): ListedFlow[] {
  const path = join(pinRoot, 'ct4');
  if (!existsSync(path)) {
    throw new AgentError(
      'AGENT_DATAPATH',
      `no conntrack map at ${path}: is per-packet LB enabled on this node's agent?`,
    );
  }
  const map = openPinnedMap(path, lbTcSpec.maps.ct4);
  try {
    return map
      .lookupBatch()
      .filter(([key]) => key.dir === CtDir.FORWARD)
      .map(([key, e]) => ({
        protocol: protoName(key.proto),
        client: `${e.client_addr}:${e.client_port}`,
        frontend: `${e.frontend_addr}:${e.frontend_port}`,
        backend: `${e.backend_addr}:${e.backend_port}`,
        source: `${e.snat_addr}:${e.snat_port}`,
        snat: (e.flags & CtFlag.SNAT) !== 0,
        state: CT_STATES[e.state] ?? `state_${e.state}`,
        expiresIn: Number((e.expires_ns - nowNs) / 1_000_000n) / 1000,
        backendId: e.backend_id,
        revNatId: e.rev_nat_id,
      }))
      .sort((a, b) => a.expiresIn - b.expiresIn);
  } finally {
    map.close();
  }
}

export function formatConntrack(node: string, flows: readonly ListedFlow[]): string {
  const rows = flows.map((f) =>
    [
      f.protocol,
      `${f.client} -> ${f.frontend}`,
      `=> ${f.backend}`,
      f.snat ? `(SNAT from ${f.source})` : '',
      f.state,
      f.expiresIn >= 0 ? `expires ${Math.ceil(f.expiresIn)}s` : 'dead',
      `backend ${f.backendId} revnat ${f.revNatId}`,
    ].join('  '),
  );
  return `node ${node}: ${flows.length} flow(s)\n${rows.map((r) => `${r}\n`).join('')}`;
}
