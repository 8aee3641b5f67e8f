/**
 * Which sluice program runs the per-packet load balancer on each interface of a network
 * namespace, read from the kernel (netlink, through `ip` and `tc`), not from the agent: lb_xdp in
 * native or generic mode, else lb_tc_ingress. What `sluice status` shows.
 */
import { execFileSync } from 'node:child_process';
import type { InterfaceMode } from './lb-xdp.js';

export interface InterfaceStatus {
  ifname: string;
  mode: Exclude<InterfaceMode, 'none'>;
  /** The program's name and id as the kernel reports them. */
  program: string;
  programId: number;
}

interface IpLink {
  ifname: string;
  xdp?: { mode?: number; prog?: { id: number; name: string } };
}
interface TcFilter {
  kind?: string;
  options?: { prog?: { id: number; name: string } };
}

// include/uapi/linux/if_link.h: XDP_ATTACHED_DRV 1, XDP_ATTACHED_SKB 2.
const XDP_ATTACHED = { 1: 'xdp-native', 2: 'xdp-generic' } as const;

function run(cmd: string, netns: string | undefined, args: string[]): string {
  const full = netns === undefined ? args : ['-n', netns, ...args];
  return execFileSync(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/**
 * Every interface of the namespace (the caller's when netns is undefined) that runs sluice's
 * per-packet LB, with its mode. Interfaces with neither lb_xdp nor lb_tc_ingress are left out.
 */
export function interfaceStatus(netns?: string): InterfaceStatus[] {
  const links = JSON.parse(run('ip', netns, ['-j', '-d', 'link', 'show'])) as IpLink[];
  const out: InterfaceStatus[] = [];
  for (const link of links) {
    const prog = link.xdp?.prog;
    const xdpMode = XDP_ATTACHED[link.xdp?.mode as 1 | 2];
    if (prog && prog.name === 'lb_xdp' && xdpMode !== undefined) {
      out.push({ ifname: link.ifname, mode: xdpMode, program: prog.name, programId: prog.id });
      continue;
    }
    let filters: TcFilter[] = [];
    try {
      const text = run('tc', netns, ['-j', 'filter', 'show', 'dev', link.ifname, 'ingress']);
      filters = text.trim() === '' ? [] : (JSON.parse(text) as TcFilter[]);
    } catch {
      continue; // no clsact qdisc, or the link went away meanwhile
    }
    const tcProg = filters.find(
      (f) => f.kind === 'bpf' && f.options?.prog?.name === 'lb_tc_ingress',
    )?.options?.prog;
    if (tcProg) {
      out.push({ ifname: link.ifname, mode: 'tc', program: tcProg.name, programId: tcProg.id });
    }
  }
  return out;
}

/** A table: one line per interface. */
export function formatInterfaceStatus(node: string, rows: readonly InterfaceStatus[]): string {
  const lines = [`node ${node}`];
  if (rows.length === 0) lines.push('  (no interface runs sluice per-packet load balancing)');
  const width = Math.max(9, ...rows.map((r) => r.ifname.length));
  if (rows.length > 0) lines.push(`  ${'INTERFACE'.padEnd(width)}  ${'MODE'.padEnd(11)}  PROGRAM`);
  for (const r of rows) {
    lines.push(
      `  ${r.ifname.padEnd(width)}  ${r.mode.padEnd(11)}  ${r.program} (id ${r.programId})`,
    );
  }
  return `${lines.join('\n')}\n`;
}
