/**
 * Support for the lab tests: a uniquely named lab per test (so concurrent runs never collide),
 * the root check (lab tests fail without root, they never skip), and the check that destroying
 * a lab left nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Node, Pod } from '../../model/types.js';
import { destroyLab } from './destroy.js';
import { isLabNetns, labNames } from './naming.js';
import { listNetns } from './netns.js';
import { isRecordedProcessAlive } from './processes.js';
import type { ProcessRecord } from './state-file.js';
import { readState, statePath } from './state-file.js';
import { LabTopology } from './topology.js';

export function requireRoot(): void {
  assert.equal(
    process.getuid?.(),
    0,
    'lab tests need root (network namespaces, cgroups): run them as root',
  );
}

let serial = 0;

/** A fresh lab name and state directory for one test. */
export function testLab(): { labName: string; stateDir: string } {
  return {
    labName: `t${process.pid}x${serial++}`,
    stateDir: mkdtempSync(join(tmpdir(), 'sluice-lab-test-')),
  };
}

/** Creates a lab, runs fn, then always destroys it and checks that nothing is left. */
export async function withLab<T>(fn: (lab: LabTopology) => Promise<T>): Promise<T> {
  requireRoot();
  const { labName, stateDir } = testLab();
  let processes: ProcessRecord[] = [];
  try {
    const lab = await LabTopology.create({ labName, stateDir });
    try {
      return await fn(lab);
    } finally {
      processes = [...(readState(stateDir)?.processes ?? [])];
    }
  } finally {
    await destroyLab({ labName, stateDir });
    await assertNothingLeft(labName, stateDir, processes);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** No namespace, cgroup, pin directory, state file or recorded process of the lab remains. */
export async function assertNothingLeft(
  labName: string,
  stateDir: string,
  processes: readonly ProcessRecord[],
): Promise<void> {
  const names = labNames(labName);
  assert.deepEqual(
    (await listNetns()).filter((n) => isLabNetns(names, n)),
    [],
  );
  const state = readState(stateDir);
  assert.equal(state, null, `${statePath(stateDir)} still exists`);
  for (const dir of [join('/sys/fs/bpf/sluice', names.dirName)]) assert.ok(!existsSync(dir), dir);
  const cgroupRoots = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].map((r) =>
    join(r, 'sluice', names.dirName),
  );
  for (const dir of cgroupRoots) assert.ok(!existsSync(dir), `${dir} still exists`);
  const alive = processes.filter((p) => isRecordedProcessAlive(p.pid, p.startTime));
  assert.deepEqual(alive, [], 'recorded processes still alive');
}

/** Node i of a test cluster: 198.18.0.10+i, pod CIDR 198.18.(16+i).0/24. */
export function testNode(i: number): Node {
  return {
    name: `node-${i}`,
    labels: {},
    ip: `198.18.0.${10 + i}`,
    podCIDR: `198.18.${16 + i}.0/24`,
  };
}

/** Pod k on node i, serving an echo server on tcp/7, udp/7 and http/80 unless told otherwise. */
export function testPod(i: number, k: number, overrides: Partial<Pod> = {}): Pod {
  return {
    namespace: 'default',
    name: `pod-${i}-${k}`,
    labels: {},
    annotations: {},
    uid: `uid-${i}-${k}`,
    nodeName: `node-${i}`,
    ip: `198.18.${16 + i}.${10 + k}`,
    containers: [
      {
        name: 'echo',
        image: 'agnhost',
        ports: [
          { name: 'echo', containerPort: 7, protocol: 'TCP' },
          { name: 'echo-udp', containerPort: 7, protocol: 'UDP' },
          { name: 'http', containerPort: 80, protocol: 'TCP' },
        ],
      },
    ],
    conditions: { ready: true, terminating: false },
    virtual: false,
    ...overrides,
  };
}

/** dist/lab/workloads/client.js, run with `node` inside namespaces. */
export const CLIENT_SCRIPT = join(
  dirname(fileURLToPath(import.meta.url)),
  '../workloads/client.js',
);
