/**
 * What `sluice doctor` checks: one small function per capability sluice needs. The parsing and
 * judging is pure (text in, finding out) so it is unit-tested anywhere; the I/O around it reads
 * /proc, probes the kernel through libbpf, or runs the scratch-namespace attach test.
 *
 * A check that needs root to answer reports MISSING with the fix "run as root (sudo)" when run
 * without it; a check that throws becomes MISSING (WARN for optional ones) with the error's first
 * line. Nothing here prints.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { promisify } from 'node:util';
import type * as Probe from '../bpf/probe.js';
import { BPFFS, VMLINUX_BTF, ensureBpffs, isBpffsMounted, isRoot } from '../bpf/environment.js';
import type { NetnsProbeResult } from './netns.js';
import { NetnsProbeFailure, runNetnsProbe } from './netns.js';

const execFileAsync = promisify(execFile);

export type Status = 'OK' | 'MISSING' | 'WARN';

/** One line of the report (and one element of `--json`). */
export interface CheckResult {
  name: string;
  status: Status;
  required: boolean;
  /** What was found; when not OK, the reason. */
  detail: string;
  /** One sentence saying how to fix it; null when OK. */
  fix: string | null;
}

/** What a check found, before the runner turns it into a status. */
export type Finding = { ok: true; detail: string } | { ok: false; detail: string; fix: string };

export function found(detail: string): Finding {
  return { ok: true, detail };
}
export function lacking(detail: string, fix: string): Finding {
  return { ok: false, detail, fix };
}

export interface DoctorContext {
  root: boolean;
  /** The scratch-namespace attach test: run at most once, shared by the checks that read it. */
  netnsProbe(): Promise<NetnsProbeResult>;
}

export interface Check {
  name: string;
  required: boolean;
  /** The answer means nothing without root (kernel probes as non-root just say no). */
  needsRoot: boolean;
  run(ctx: DoctorContext): Finding | Promise<Finding>;
}

export const ROOT_FIX = 'run as root (sudo)';
export const MIN_CLANG = [11, 0] as const;
export const MIN_LIBBPF = [1, 0] as const;
export const MIN_NODE = [20, 0] as const;

// ---------------------------------------------------------------------------------------------
// Pure parsing and judging

/** '14.0.6' -> [14, 0, 6]; leading 'v' allowed; null when it does not start with a number. */
export function parseVersion(text: string): number[] | null {
  const m = /^v?(\d+(?:\.\d+)*)/.exec(text.trim());
  return m?.[1] ? m[1].split('.').map(Number) : null;
}

/** Numeric, component by component ('9' < '11'); missing components count as 0. */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The version in `clang --version` output ('Debian clang version 14.0.6' -> '14.0.6'). */
export function parseClangVersion(output: string): string | null {
  const m = /\bclang version (\d+(?:\.\d+){0,2})/i.exec(output);
  return m?.[1] ?? null;
}

const CLANG_FIX = `install clang ${MIN_CLANG[0]} or newer (apt-get install clang) or point CLANG at it`;

/** `output` is what `clang --version` printed, or null when clang could not be run. */
export function clangFinding(output: string | null, command = 'clang'): Finding {
  const fix = CLANG_FIX;
  if (output === null) return lacking(`${command} not found`, fix);
  const version = parseClangVersion(output);
  if (version === null) {
    const first = output.trim().split('\n')[0] ?? '';
    return lacking(`cannot read a version from '${first}'`, fix);
  }
  const parsed = parseVersion(version) ?? [];
  if (compareVersions(parsed, MIN_CLANG) < 0) {
    return lacking(`clang ${version} is older than ${MIN_CLANG[0]}`, fix);
  }
  return found(`clang ${version}`);
}

export function libbpfFinding(major: number, minor: number): Finding {
  if (compareVersions([major, minor], MIN_LIBBPF) < 0) {
    return lacking(
      `libbpf ${major}.${minor} is older than ${MIN_LIBBPF.join('.')}`,
      'install libbpf 1.0 or newer (apt-get install libbpf1)',
    );
  }
  return found(`libbpf ${major}.${minor}`);
}

export function nodeFinding(version: string): Finding {
  const parsed = parseVersion(version);
  if (!parsed || compareVersions(parsed, MIN_NODE) < 0) {
    return lacking(
      `Node.js ${version} is older than ${MIN_NODE[0]}`,
      'install Node.js 20 or newer',
    );
  }
  return found(`Node.js ${version.replace(/^v/, '')}`);
}

/** `content` is /proc/sys/net/core/bpf_jit_enable, or null when the file does not exist. */
export function jitFinding(content: string | null): Finding {
  const fix = 'run sysctl -w net.core.bpf_jit_enable=1';
  if (content === null) {
    return lacking('this kernel has no BPF JIT', 'use a kernel built with CONFIG_BPF_JIT=y');
  }
  const value = content.trim();
  if (value === '1') return found('JIT enabled (net.core.bpf_jit_enable = 1)');
  if (value === '2') return found('JIT enabled, with debug output (net.core.bpf_jit_enable = 2)');
  if (value === '0') return lacking('JIT disabled (net.core.bpf_jit_enable = 0)', fix);
  return lacking(`unexpected net.core.bpf_jit_enable value '${value}'`, fix);
}

/** Decodes the octal escapes /proc/mounts uses for space, tab, newline and backslash. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points of cgroup2 file systems in /proc/mounts text, in order. */
export function findCgroup2Mounts(mounts: string): string[] {
  return mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, mountPoint, fsType]) => fsType === 'cgroup2' && mountPoint !== undefined)
    .map(([, mountPoint]) => unescapeMountPath(mountPoint ?? ''));
}

export function cgroup2Finding(mounts: string): Finding {
  const [first] = findCgroup2Mounts(mounts);
  if (first === undefined) {
    return lacking(
      'no cgroup2 file system is mounted',
      'mount one: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified',
    );
  }
  const v1 = mounts.split('\n').some((line) => line.split(' ')[2] === 'cgroup');
  return found(`${first} (${v1 ? 'hybrid hierarchy: cgroup v1 controllers too' : 'unified'})`);
}

/** tcp_available_congestion_control text -> names. */
export function parseCongestionControls(text: string): string[] {
  return text.split(/\s+/).filter((name) => name !== '');
}

// ---------------------------------------------------------------------------------------------
// I/O helpers

type ProbeModule = typeof Probe;
let probeModule: Promise<ProbeModule> | undefined;
/** Loaded on first use, so a missing libbpf.so.1 is a finding rather than a crash at startup. */
function probes(): Promise<ProbeModule> {
  probeModule ??= import('../bpf/probe.js');
  return probeModule;
}

function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/** The netns test's result, or the finding that says why it could not run. */
async function attachTest(ctx: DoctorContext): Promise<NetnsProbeResult | Finding> {
  try {
    return await ctx.netnsProbe();
  } catch (error) {
    if (error instanceof NetnsProbeFailure) return lacking(error.message, error.fix);
    throw error;
  }
}

function isFinding(value: NetnsProbeResult | Finding): value is Finding {
  return 'detail' in value;
}

// ---------------------------------------------------------------------------------------------
// The checks, in report order

const TC_FIX =
  'use a kernel with clsact and cls_bpf (CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF), or modprobe sch_ingress cls_bpf';

export const CHECKS: readonly Check[] = [
  {
    name: 'root',
    required: true,
    needsRoot: false,
    run: (ctx) =>
      ctx.root ? found('euid 0') : lacking(`euid ${process.geteuid?.() ?? '?'}`, ROOT_FIX),
  },
  {
    name: 'bpf-syscall',
    required: true,
    needsRoot: true,
    run: async () =>
      (await probes()).probeProgType('socket_filter')
        ? found(`bpf(BPF_PROG_LOAD) works (kernel ${release()})`)
        : lacking(
            `the kernel refused a trivial program (kernel ${release()})`,
            'use a kernel with CONFIG_BPF_SYSCALL=y and, in a container, allow the bpf() syscall and CAP_BPF',
          ),
  },
  {
    name: 'bpf-jit',
    required: true,
    needsRoot: false,
    run: () => jitFinding(readOptional('/proc/sys/net/core/bpf_jit_enable')),
  },
  {
    name: 'btf',
    required: true,
    needsRoot: false,
    run: () => {
      try {
        const size = statSync(VMLINUX_BTF).size;
        return found(`${VMLINUX_BTF} (${(size / 2 ** 20).toFixed(1)} MiB)`);
      } catch {
        return lacking(
          `no kernel BTF at ${VMLINUX_BTF}`,
          'use a kernel built with CONFIG_DEBUG_INFO_BTF=y',
        );
      }
    },
  },
  {
    name: 'bpffs',
    required: true,
    needsRoot: false,
    run: (ctx) => {
      if (isBpffsMounted()) return found(`mounted at ${BPFFS}`);
      const fix = `run as root (sudo), or mount it: mount -t bpf bpf ${BPFFS}`;
      if (!ctx.root) return lacking(`not mounted at ${BPFFS}`, fix);
      try {
        ensureBpffs();
      } catch (error) {
        return lacking(firstLine(error), `mount it: mount -t bpf bpf ${BPFFS}`);
      }
      return found(`was not mounted: mounted it now at ${BPFFS} (mount -t bpf bpf ${BPFFS})`);
    },
  },
  {
    name: 'cgroup2',
    required: true,
    needsRoot: false,
    run: () => cgroup2Finding(readFileSync('/proc/mounts', 'utf8')),
  },
  {
    name: 'tc-bpf',
    required: true,
    needsRoot: true,
    run: async (ctx) => {
      if (!(await probes()).probeProgType('sched_cls')) {
        return lacking('the kernel refuses sched_cls programs', TC_FIX);
      }
      const test = await attachTest(ctx);
      if (isFinding(test)) return test;
      for (const [dir, outcome] of [
        ['ingress', test.tcIngress],
        ['egress', test.tcEgress],
      ] as const) {
        if (!outcome.ok) return lacking(`clsact ${dir} attach failed: ${outcome.error}`, TC_FIX);
      }
      return found('sched_cls attached at clsact ingress and egress (veth in a scratch netns)');
    },
  },
  {
    name: 'xdp-native-veth',
    required: true,
    needsRoot: true,
    run: async (ctx) => {
      const fix = 'use a kernel 4.19 or newer, whose veth driver runs XDP natively';
      if (!(await probes()).probeProgType('xdp')) {
        return lacking('the kernel refuses XDP programs', fix);
      }
      const test = await attachTest(ctx);
      if (isFinding(test)) return test;
      if (!test.xdpNative.ok) {
        const generic = test.xdpGeneric?.ok ? ' (generic XDP works)' : '';
        return lacking(`native XDP attach failed: ${test.xdpNative.error}${generic}`, fix);
      }
      return found('XDP attached in native (driver) mode (veth in a scratch netns)');
    },
  },
  {
    name: 'sockmap',
    required: true,
    needsRoot: true,
    run: async () => {
      const p = await probes();
      const missing = [
        p.probeMapType('sockmap') ? null : 'sockmap maps',
        p.probeMapType('sockhash') ? null : 'sockhash maps',
        p.probeProgType('sk_msg') ? null : 'sk_msg programs',
        p.probeProgType('sock_ops') ? null : 'sock_ops programs',
      ].filter((m) => m !== null);
      if (missing.length > 0) {
        return lacking(
          `not supported: ${missing.join(', ')}`,
          'use a kernel built with CONFIG_BPF_STREAM_PARSER=y (sockmap, sockhash and sk_msg)',
        );
      }
      return found('sockmap and sockhash maps, sk_msg and sock_ops programs');
    },
  },
  {
    name: 'cgroup-sock-addr',
    required: true,
    needsRoot: true,
    run: async () =>
      (await probes()).probeProgType('cgroup_sock_addr')
        ? found('cgroup_sock_addr programs load (connect4, sendmsg4, recvmsg4, getpeername4)')
        : lacking(
            'the kernel refuses cgroup_sock_addr programs',
            'use a kernel 4.17 or newer built with CONFIG_CGROUP_BPF=y',
          ),
  },
  {
    name: 'bpf-set-retval',
    required: true,
    needsRoot: true,
    run: async () =>
      (await probes()).probeHelper('cgroup_sock_addr', 'set_retval')
        ? found('cgroup_sock_addr programs may call bpf_set_retval (helper 187)')
        : lacking(
            'cgroup_sock_addr programs cannot call bpf_set_retval (helper 187)',
            'use a kernel 5.18 or newer',
          ),
  },
  {
    name: 'bbr',
    required: false,
    needsRoot: false,
    run: (ctx) => {
      const path = '/proc/sys/net/ipv4/tcp_available_congestion_control';
      const available = (): string[] => parseCongestionControls(readOptional(path) ?? '');
      const before = available();
      if (before.includes('bbr')) return found(`available (${before.join(' ')})`);
      const fix =
        'load it with modprobe tcp_bbr (kernel option CONFIG_TCP_CONG_BBR); without it connections keep the default congestion control';
      if (!ctx.root) return lacking(`not available (${before.join(' ')})`, fix);
      let modprobeError = '';
      try {
        execFileSync('modprobe', ['tcp_bbr'], { stdio: 'pipe' });
      } catch (error) {
        modprobeError = `; modprobe tcp_bbr failed: ${firstLine(error)}`;
      }
      if (available().includes('bbr')) return found('available: loaded it now (modprobe tcp_bbr)');
      return lacking(`not available (${before.join(' ')})${modprobeError}`, fix);
    },
  },
  {
    name: 'clang',
    required: true,
    needsRoot: false,
    run: async () => {
      const command = process.env.CLANG || 'clang';
      let output: string | null;
      try {
        output = (await execFileAsync(command, ['--version'], { timeout: 30_000 })).stdout;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          return lacking(`${command} --version failed: ${firstLine(error)}`, CLANG_FIX);
        }
        output = null;
      }
      return clangFinding(output, command);
    },
  },
  {
    name: 'libbpf',
    required: true,
    needsRoot: false,
    run: async () => {
      let p: ProbeModule;
      try {
        p = await probes();
      } catch (error) {
        return lacking(
          `libbpf.so.1 cannot be loaded: ${firstLine(error)}`,
          'install libbpf 1.0 or newer (apt-get install libbpf1)',
        );
      }
      const { major, minor } = p.libbpfVersion();
      return libbpfFinding(major, minor);
    },
  },
  {
    name: 'node',
    required: true,
    needsRoot: false,
    run: () => nodeFinding(process.versions.node),
  },
];

/** Collapses whitespace runs with newlines so every result stays one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

export function toResult(check: Check, finding: Finding): CheckResult {
  const failed = check.required ? 'MISSING' : 'WARN';
  return {
    name: check.name,
    status: finding.ok ? 'OK' : failed,
    required: check.required,
    detail: oneLine(finding.detail),
    fix: finding.ok ? null : oneLine(finding.fix),
  };
}

/** Runs one check; it never throws. */
export async function runCheck(check: Check, ctx: DoctorContext): Promise<CheckResult> {
  if (check.needsRoot && !ctx.root) {
    return toResult(check, lacking('cannot be checked without root', ROOT_FIX));
  }
  try {
    return toResult(check, await check.run(ctx));
  } catch (error) {
    return toResult(
      check,
      lacking(
        `check failed: ${firstLine(error) || 'unknown error'}`,
        'fix the cause this error names, or report it as a sluice bug if it names none',
      ),
    );
  }
}

export interface DoctorOptions {
  checks?: readonly Check[];
  root?: boolean;
  netnsProbe?: () => Promise<NetnsProbeResult>;
}

/** Runs every check in order and returns one result each. */
export async function runDoctor(options: DoctorOptions = {}): Promise<CheckResult[]> {
  let test: Promise<NetnsProbeResult> | undefined;
  const probe = options.netnsProbe ?? (() => runNetnsProbe());
  const ctx: DoctorContext = {
    root: options.root ?? isRoot(),
    netnsProbe: () => (test ??= probe()),
  };
  const results: CheckResult[] = [];
  for (const check of options.checks ?? CHECKS) results.push(await runCheck(check, ctx));
  return results;
}
