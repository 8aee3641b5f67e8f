/**
 * A stable text form of the load-balancing maps: one line per entry, sorted, ids included. The
 * golden tests compare it with checked-in expectations, and `sluice service list` shares the
 * flag names. Changing the format means regenerating the golden files (SLUICE_UPDATE_GOLDEN=1).
 */
import { LbBackendFlag, LbServiceFlag } from '../datapath/lb.js';
import { protoName, scopeName } from './plan.js';
import type { ProgrammedState } from './programmed.js';

const SERVICE_FLAG_NAMES: [number, string][] = [
  [LbServiceFlag.CLUSTER_IP, 'ClusterIP'],
  [LbServiceFlag.NODEPORT, 'NodePort'],
  [LbServiceFlag.EXTERNAL_IP, 'ExternalIP'],
  [LbServiceFlag.LOADBALANCER, 'LoadBalancer'],
  [LbServiceFlag.AFFINITY, 'Affinity'],
  [LbServiceFlag.LOCAL_ONLY, 'LocalOnly'],
];
const BACKEND_FLAG_NAMES: [number, string][] = [
  [LbBackendFlag.LOCAL, 'Local'],
  [LbBackendFlag.TERMINATING, 'Terminating'],
];

function flagNames(flags: number, names: readonly [number, string][]): string {
  const known = names.filter(([bit]) => flags & bit).map(([, name]) => name);
  const rest = names.reduce((f, [bit]) => f & ~bit, flags);
  if (rest) known.push(`0x${rest.toString(16)}`);
  return known.join(',') || '-';
}

export const serviceFlagNames = (flags: number): string => flagNames(flags, SERVICE_FLAG_NAMES);
export const backendFlagNames = (flags: number): string => flagNames(flags, BACKEND_FLAG_NAMES);

/** Sorts numerically by IPv4 address then port, so listings read naturally. */
export function compareAddressPort(a: [string, number], b: [string, number]): number {
  const n = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a[0]) - n(b[0]) || a[1] - b[1];
}

export function dumpProgrammed(state: ProgrammedState): string {
  const lines: string[] = [];
  lines.push('# lb4_services: frontend -> service_id rev_nat_id count flags affinity');
  const services = [...state.services.values()].sort(
    (a, b) =>
      compareAddressPort([a.key.address, a.key.dport], [b.key.address, b.key.dport]) ||
      a.key.proto - b.key.proto ||
      a.key.scope - b.key.scope,
  );
  for (const { key, value } of services) {
    lines.push(
      `${key.address}:${key.dport}/${protoName(key.proto)} ${scopeName(key.scope)} -> ` +
        `service=${value.service_id} revnat=${value.rev_nat_id} count=${value.backend_count} ` +
        `flags=${serviceFlagNames(value.flags)} affinity=${value.affinity_timeout}`,
    );
  }
  lines.push('# lb_slots: service_id/slot -> backend_id');
  for (const [id, slots] of [...state.slots].sort(([a], [b]) => a - b)) {
    for (const [slot, backend] of [...slots].sort(([a], [b]) => a - b)) {
      lines.push(`${id}/${slot} -> ${backend}`);
    }
  }
  lines.push('# lb4_backends: backend_id -> address flags node');
  for (const [id, b] of [...state.backends].sort(([a], [b]) => a - b)) {
    lines.push(
      `${id} -> ${b.address}:${b.port}/${protoName(b.proto)} flags=${backendFlagNames(b.flags)} node=${b.node_address}`,
    );
  }
  lines.push('# lb4_reverse_nat: rev_nat_id -> frontend');
  for (const [id, r] of [...state.revNat].sort(([a], [b]) => a - b)) {
    lines.push(`${id} -> ${r.address}:${r.port}`);
  }
  return `${lines.join('\n')}\n`;
}
