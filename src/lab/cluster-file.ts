/**
 * The lab's cluster record: the configuration it was brought up with and the model's cluster
 * state, kept beside the topology's state file so every `sluice lab` command (a separate
 * process) continues where the last one left off.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterState } from '../model/index.js';
import { stateFromJSON, stateToJSON } from '../model/index.js';
import type { IptablesBackendChoice } from '../kubeproxy/apply.js';
import type { ProxyMode } from './proxy.js';

const FILE = 'cluster.json';

export interface LabConfig {
  proxy: ProxyMode;
  nodes: number;
  labName?: string;
  /** iptables mode: which iptables-restore programs the nodes (default: the distribution's). */
  iptablesBackend?: IptablesBackendChoice;
}

export interface ClusterRecord {
  config: LabConfig;
  state: ClusterState;
}

export function clusterPath(stateDir: string): string {
  return join(stateDir, FILE);
}

export function readCluster(stateDir: string): ClusterRecord | null {
  const path = clusterPath(stateDir);
  if (!existsSync(path)) return null;
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { config: LabConfig; state: unknown };
  return { config: raw.config, state: stateFromJSON(raw.state) };
}

/** Written to a temporary file and renamed, so a crash never leaves half a record. */
export function writeCluster(stateDir: string, record: ClusterRecord): void {
  const path = clusterPath(stateDir);
  writeFileSync(
    `${path}.tmp`,
    JSON.stringify({ config: record.config, state: stateToJSON(record.state) }),
  );
  renameSync(`${path}.tmp`, path);
}

export function removeCluster(stateDir: string): void {
  rmSync(clusterPath(stateDir), { force: true });
}
