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

export function isBpffsMounted(path = BPFFS): boolean {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  return mounts.split('\n').some((line) => {
    const [, mountPoint, fsType] = line.split(' ');
    return mountPoint === path && fsType === 'bpf';
  });
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
