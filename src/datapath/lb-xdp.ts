/**
 * The XDP fast path of the per-packet load balancer (bpf/lb_xdp.c): its ObjectSpec (the same
 * pinned maps as lb_tc, so conntrack, services and counters are shared), its load-time config,
 * and persistent attach per mode with the mode each interface runs now.
 *
 * lb_xdp attaches to the uplink in front of lb_tc_ingress, never instead of it: whatever XDP
 * does not finish (local pods, unresolved neighbours, no frontend, ICMP) it passes, and TC
 * completes it with the conntrack entry XDP made (docs/xdp.md).
 */
import { execFileSync } from 'node:child_process';
import { bytes, ipv4, pad, struct, u8, u16, u32, u64 } from '../bpf/codec.js';
import type { ObjectSpec } from '../bpf/object.js';
import type { BpfProgram } from '../bpf/object.js';
import { ifindexOf } from '../bpf/attach.js';
import type { PersistentOutcome } from '../bpf/attach.js';
import { BpfError } from '../bpf/errors.js';
import { libbpf } from '../bpf/libbpf.js';
import type { LbTcConfig } from './lb-tc.js';
import { lbTcRodata, lbTcSpec } from './lb-tc.js';

/** lb_tc's .rodata but ICMP errors, which are TC's alone. */
function withoutIcmp<T extends { icmp_errors_per_sec: unknown }>(
  all: T,
): Omit<T, 'icmp_errors_per_sec'> {
  const copy: Partial<T> = { ...all };
  delete copy.icmp_errors_per_sec;
  return copy as Omit<T, 'icmp_errors_per_sec'>;
}
const xdpRodata = withoutIcmp(lbTcSpec.rodata);

/** struct fib4_cache_key (bpf/include/fib_cache.h) */
export const Fib4CacheKey = struct('fib4_cache_key', {
  saddr: ipv4,
  daddr: ipv4,
  ifindex: u32,
  tos: u8,
  pad: pad(3),
});

/** struct fib4_cache_entry: a next hop the FIB gave, for a second. */
export const Fib4CacheEntry = struct('fib4_cache_entry', {
  expires_ns: u64,
  ifindex: u32,
  fits_len: u16,
  pad: pad(2),
  dmac: bytes(6),
  smac: bytes(6),
  pad2: pad(4),
});

export const lbXdpSpec = {
  file: 'lb_xdp.bpf.o',
  maps: {
    ...lbTcSpec.maps,
    // Per object, not pinned: a reload starts with an empty cache.
    fib4_cache: { key: Fib4CacheKey, value: Fib4CacheEntry, perCpu: true, pin: false },
  },
  programs: ['lb_xdp'],
  // lb_tc's, but ICMP errors are TC's alone (XDP passes services without endpoints to it).
  rodata: xdpRodata,
} as const satisfies ObjectSpec;

/** LoadOptions.rodata for lbXdpSpec: lb_tc's settings, which must be the same for both. */
export function lbXdpRodata(config: LbTcConfig): Record<string, number> {
  return lbXdpRodataOf(lbTcRodata(config));
}

/**
 * The XDP object's .rodata from the TC object's, whatever the latter holds (every setting the
 * two share must be equal: they make and read the same conntrack entries).
 */
export function lbXdpRodataOf(tcRodata: Record<string, number>): Record<string, number> {
  return withoutIcmp(tcRodata as { icmp_errors_per_sec: number });
}

export type XdpMode = 'native' | 'generic';
/** What runs the per-packet LB on an interface, as `sluice status` shows it. */
export type InterfaceMode = 'xdp-native' | 'xdp-generic' | 'tc' | 'none';

// include/uapi/linux/if_link.h
const XDP_FLAGS = { SKB_MODE: 2, DRV_MODE: 4 } as const;
const modeFlag = (mode: XdpMode): number =>
  mode === 'native' ? XDP_FLAGS.DRV_MODE : XDP_FLAGS.SKB_MODE;

/** The id of the XDP program attached in this mode, 0 when none. */
export function xdpProgramIdIn(ifname: string, mode: XdpMode): number {
  const id = [0];
  const ret = libbpf.xdp_query_id(ifindexOf(ifname), modeFlag(mode), id) as number;
  if (ret < 0) throw new BpfError('bpf_xdp_query_id', ifname, ret);
  return id[0] ?? 0;
}

/**
 * Attaches an XDP program that stays after this process exits (netlink XDP belongs to the
 * interface), replacing a program already attached in the same mode in one step (packets see
 * the old program or the new one). A program of ours in the other mode is detached first:
 * native and generic cannot both be active. Throws BpfError (e.g. EOPNOTSUPP: the driver has no
 * native XDP), leaving the interface as it was.
 */
export function attachXdpPersistent(
  prog: BpfProgram,
  ifname: string,
  mode: XdpMode,
): PersistentOutcome {
  const ifindex = ifindexOf(ifname);
  const other: XdpMode = mode === 'native' ? 'generic' : 'native';
  const replaced = xdpProgramIdIn(ifname, mode) !== 0;
  const ret = libbpf.xdp_attach(ifindex, prog.fd, modeFlag(mode), null) as number;
  if (ret === -17 && xdpProgramIdIn(ifname, other) !== 0) {
    // EEXIST: the other mode holds a program (a restart with a changed xdp.mode).
    const d = libbpf.xdp_detach(ifindex, modeFlag(other), null) as number;
    if (d < 0) throw new BpfError('bpf_xdp_detach', `${ifname} (${other})`, d);
    const again = libbpf.xdp_attach(ifindex, prog.fd, modeFlag(mode), null) as number;
    if (again < 0)
      throw new BpfError('bpf_xdp_attach', `${prog.name} on ${ifname} (${mode})`, again);
    return 'replaced';
  }
  if (ret < 0) throw new BpfError('bpf_xdp_attach', `${prog.name} on ${ifname} (${mode})`, ret);
  return replaced ? 'replaced' : 'attached';
}

/** Detaches whatever XDP program the interface has in this mode (none: nothing happens). */
export function detachXdp(ifname: string, mode: XdpMode): void {
  const ret = libbpf.xdp_detach(ifindexOf(ifname), modeFlag(mode), null) as number;
  if (ret < 0) throw new BpfError('bpf_xdp_detach', `${ifname} (${mode})`, ret);
}

/** The XDP mode an interface runs a program in, if any. */
export function xdpModeOf(ifname: string): 'xdp-native' | 'xdp-generic' | undefined {
  if (xdpProgramIdIn(ifname, 'native') !== 0) return 'xdp-native';
  if (xdpProgramIdIn(ifname, 'generic') !== 0) return 'xdp-generic';
  return undefined;
}

/**
 * Detaches lb_xdp from the interfaces that should no longer run it (xdp disabled, or dropped
 * from xdp.interfaces) after a restart with a changed config; another program is left alone.
 * Returns the interfaces it detached from.
 */
export function detachStaleXdp(ifnames: readonly string[]): string[] {
  const detached: string[] = [];
  for (const ifname of ifnames) {
    let link: { xdp?: { mode?: number; prog?: { name?: string } } } | undefined;
    try {
      const text = execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', ifname], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }).toString();
      [link] = JSON.parse(text) as (typeof link)[];
    } catch {
      continue; // no such interface
    }
    if (link?.xdp?.prog?.name !== 'lb_xdp') continue;
    detachXdp(ifname, link.xdp.mode === 2 ? 'generic' : 'native');
    detached.push(ifname);
  }
  return detached;
}
