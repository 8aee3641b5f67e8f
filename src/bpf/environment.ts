/**
 * Preconditions every BPF-using command shares: root, a mounted bpffs, kernel BTF. Each failure
 * is one sentence that says how to fix it; the CLI prints it without a stack trace.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { SluiceError } from './errors.js';

export const BPFFS = '/sys/fs/bpf';
export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** Mount points of every file system of this type, from /proc/mounts, in mount order. */
export function mountPoints(fsType: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, mountPoint, type]) => type === fsType && mountPoint)
    .map(([, mountPoint]) => mountPoint ?? '');
}

export function isBpffsMounted(path = BPFFS): boolean {
  return mountPoints('bpf').includes(path);
}

/** The cgroup v2 mount point (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Root(): string {
  const [root] = mountPoints('cgroup2');
  if (!root) {
    throw new SluiceError(
      'NO_CGROUP2',
      'no cgroup v2 file system is mounted: mount -t cgroup2 none /sys/fs/cgroup/unified',
    );
  }
  return root;
}

/** Mounts bpffs at /sys/fs/bpf when it is missing (as systemd does on most distributions). */
export function ensureBpffs(): void {
  if (isBpffsMounted()) return;
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS], { stdio: 'pipe' });
  } catch (error) {
    throw new SluiceError(
      'NO_BPFFS',
      `bpffs is not mounted at ${BPFFS} and mounting it failed; run: mount -t bpf bpf ${BPFFS}`,
      { cause: error },
    );
  }
}

/** Throws the first unmet precondition for loading BPF programs. */
export function requireBpfEnvironment(): void {
  if (!isRoot()) {
    throw new SluiceError('NOT_ROOT', 'sluice needs root for BPF programs, network namespaces and cgroups: run it as root (or with sudo)');
  }
  if (!existsSync(VMLINUX_BTF)) {
    throw new SluiceError(
      'BTF_MISSING',
      `the kernel exposes no BTF at ${VMLINUX_BTF}: use a kernel built with CONFIG_DEBUG_INFO_BTF=y`,
    );
  }
  ensureBpffs();
}
