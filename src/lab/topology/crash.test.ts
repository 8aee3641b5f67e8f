import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { destroyLab } from './destroy.js';
import { isRecordedProcessAlive } from './processes.js';
import { ipBatch } from './exec.js';
import { labNames } from './naming.js';
import type { ProcessRecord } from './state-file.js';
import { readState } from './state-file.js';
import { assertNothingLeft, requireRoot, testLab } from './testkit.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

/**
 * Runs the child until `killWhen` says so (checked on each stdout line and every millisecond),
 * SIGKILLs it, and returns the processes its state file recorded.
 */
async function crashChild(
  stateDir: string,
  labName: string,
  killWhen: (line: string | null) => boolean,
): Promise<ProcessRecord[]> {
  const child = spawn(process.execPath, [CHILD, stateDir, labName], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let done = false;
  const kill = (): void => {
    if (!done) child.kill('SIGKILL');
    done = true;
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) if (killWhen(line)) kill();
  });
  const deadline = Date.now() + 60_000;
  while (!done && Date.now() < deadline) {
    if (killWhen(null)) kill();
    await sleep(1);
  }
  kill();
  await exited;
  return readState(stateDir)?.processes ?? [];
}

describe('lab destroy after a crash (root)', () => {
  it('removes everything a SIGKILLed lab left, detached workloads and strays included', async () => {
    requireRoot();
    const { labName, stateDir } = testLab();
    let processes: ProcessRecord[] = [];
    try {
      processes = await crashChild(stateDir, labName, (line) => line === 'ready');
      assert.equal(processes.length, 2 + 40, 'two node processes and one workload per pod');
      // The workloads outlive the lab process that started them...
      assert.ok(processes.every((p) => isRecordedProcessAlive(p.pid, p.startTime)));
      // ... and a namespace nobody recorded (a crash between add and record) is swept too.
      await ipBatch([`netns add ${labNames(labName).prefix}pod-9-9`]);
    } finally {
      const report = await destroyLab({ stateDir, labName });
      assert.ok(report.processes >= 43, `ended ${report.processes} processes`);
      assert.equal(report.netns.length, 4 + 40 + 1);
      await assertNothingLeft(labName, stateDir, processes);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('removes a lab killed while its pods were being created', async () => {
    requireRoot();
    const { labName, stateDir } = testLab();
    let processes: ProcessRecord[] = [];
    try {
      // Kill as soon as the state file records pods, i.e. while they are being created.
      processes = await crashChild(
        stateDir,
        labName,
        (line) => line === null && Object.keys(readState(stateDir)?.pods ?? {}).length > 0,
      );
      assert.ok(Object.keys(readState(stateDir)?.pods ?? {}).length > 0);
    } finally {
      await destroyLab({ stateDir, labName });
      await assertNothingLeft(labName, stateDir, processes);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
