#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine, as root: Debian packages, npm
# dependencies from the lockfile, bpffs, then the build (BPF objects with -Wall -Werror against a
# vmlinux.h generated from the running kernel's BTF, native helpers (the lab echo server, the C side of bench maps), TypeScript strict).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  say "run as root: it installs Debian packages and mounts bpffs (sudo $0)" >&2
  exit 1
fi

# Toolchain and datapath: clang/llvm/libbpf-dev/bpftool build the BPF objects; iproute2 and
# ethtool drive namespaces and links; iptables/nftables are the kube-proxy baselines;
# iputils-ping sends test traffic inside lab namespaces; redis-server is the lab's redis workload.
packages=(make gcc clang llvm libbpf-dev bpftool iproute2 ethtool iptables nftables iputils-ping redis-server sockperf iperf3 conntrack)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies from the lockfile"
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
  say "mounting bpffs at /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

say "building"
make -s -C bpf
make -s -C native
npx tsc -p tsconfig.json
say "done: ./sluice doctor checks this machine; npm test runs the tests"
