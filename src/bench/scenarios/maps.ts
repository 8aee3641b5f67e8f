/**
 * Scenario `maps`: map programming throughput from C (libbpf, native/map_bench.c) and from
 * TypeScript through sluice's binding, on the same object (bpf/bench_maps.c) and the same
 * sequence of work, so the difference is the binding's overhead and nothing else:
 *
 *   0. prebuild packed key and value arrays for all N entries (not timed)
 *   1. N single updates, building each key and value as a control plane does (timed)
 *   2. a lookup of every key (timed)
 *   3. delete all in batches (not timed), then batch updates of the prebuilt arrays in chunks
 *      of 4096 (timed)
 *
 * Each run loads a fresh object and closes it; the C side is a fresh process per run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pad, struct, u8, u16, u32, u64 } from '../../bpf/codec.js';
import type { ObjectSpec } from '../../bpf/object.js';
import { BPF_OUTPUT_DIR, loadObject } from '../../bpf/object.js';
import { BenchError } from '../errors.js';
import type { Params } from '../results.js';
import type { MetricSpec, RunContext, Samples, Scenario, ScenarioOptions } from '../runner.js';

/** bpf/include/bench.h */
export const BenchKey = struct('bench_key', {
  id: u64,
  addr: u32,
  port: u16,
  proto: u8,
  pad: pad(1),
});
export const BenchValue = struct('bench_value', { a: u64, b: u64, c: u64, d: u64 });

export const benchMapsSpec = {
  file: 'bench_maps.bpf.o',
  maps: { bench_hash: { key: BenchKey, value: BenchValue } },
  programs: [],
} as const satisfies ObjectSpec;

/** The C side, built by `make -C bench`. */
export const MAP_BENCH = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../native/.output/map_bench',
);

export const ENTRIES = 1_000_000;
export const QUICK_ENTRIES = 100_000;

export const MODES = ['c-libbpf', 'sluice-ts'] as const;

export const METRICS: readonly MetricSpec[] = [
  { name: 'update-rate', unit: 'entries/s', better: 'higher' },
  { name: 'batch-update-rate', unit: 'entries/s', better: 'higher' },
  { name: 'lookup-ns', unit: 'ns/lookup', better: 'lower' },
];

/** Key i: the same bytes as fill_key() in native/map_bench.c. */
export function keyOf(i: number) {
  return { id: BigInt(i), addr: (0xc6120000 + i) >>> 0, port: i & 0xffff, proto: 6 };
}

/** Value i: the same bytes as fill_value() in native/map_bench.c. */
export function valueOf(i: number) {
  return { a: BigInt(i), b: 0n, c: 0n, d: 0n };
}

/** Packed arrays of keys and values 0..n-1, as the batch calls take them. */
export function packEntries(n: number): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(n * BenchKey.size);
  const values = Buffer.alloc(n * BenchValue.size);
  for (let i = 0; i < n; i++) {
    BenchKey.encode(keyOf(i), keys, i * BenchKey.size);
    BenchValue.encode(valueOf(i), values, i * BenchValue.size);
  }
  return { keys, values };
}

// The timed loops return to the event loop every SLICE operations so Ctrl-C is seen promptly;
// only the time spent inside the slices is counted.
const SLICE = 1 << 16;

async function timedLoop(
  n: number,
  body: (i: number) => void,
  signal: AbortSignal,
): Promise<number> {
  let ns = 0n;
  for (let start = 0; start < n; start += SLICE) {
    signal.throwIfAborted();
    const end = Math.min(n, start + SLICE);
    const t0 = process.hrtime.bigint();
    for (let i = start; i < end; i++) body(i);
    ns += process.hrtime.bigint() - t0;
    await nextTurn();
  }
  return Number(ns) / 1e9;
}

async function runTs(entries: number, signal: AbortSignal): Promise<Samples> {
  const obj = loadObject(benchMapsSpec, { maxEntries: { bench_hash: entries } });
  try {
    const map = obj.maps.bench_hash;
    const { keys, values } = packEntries(entries);

    // 1. single updates, encoding each key and value with the codecs
    const updateS = await timedLoop(entries, (i) => map.update(keyOf(i), valueOf(i)), signal);

    // 2. lookups of every key
    const lookupS = await timedLoop(
      entries,
      (i) => {
        if (map.lookup(keyOf(i)) === undefined) throw new Error(`bench_hash: key ${i} is missing`);
      },
      signal,
    );

    // 3. empty the map, then batched inserts of the prebuilt arrays (chunked by the binding)
    const all = Array.from({ length: entries }, (_, i) => keyOf(i));
    const deleted = map.deleteBatch(all);
    if (deleted !== entries) throw new Error(`bench_hash: deleted ${deleted} of ${entries}`);
    await nextTurn();
    signal.throwIfAborted();
    const t0 = process.hrtime.bigint();
    const written = map.updateBatchRaw(keys, values, entries);
    const batchS = Number(process.hrtime.bigint() - t0) / 1e9;
    if (written !== entries) throw new Error(`bench_hash: batch wrote ${written} of ${entries}`);

    // Rounded as map_bench prints them (%.0f, %.1f).
    return {
      'update-rate': Math.round(entries / updateS),
      'batch-update-rate': Math.round(entries / batchS),
      'lookup-ns': Math.round((lookupS * 1e10) / entries) / 10,
    };
  } finally {
    obj.close();
  }
}

interface MapBenchOutput {
  update_rate: number;
  batch_update_rate: number;
  lookup_ns: number;
}

function parseMapBench(stdout: string): Samples {
  const out = JSON.parse(stdout) as Partial<MapBenchOutput>;
  const { update_rate, batch_update_rate, lookup_ns } = out;
  if (
    typeof update_rate !== 'number' ||
    typeof batch_update_rate !== 'number' ||
    typeof lookup_ns !== 'number'
  ) {
    throw new BenchError(`map_bench printed an unexpected result: ${stdout.trim()}`);
  }
  return {
    'update-rate': update_rate,
    'batch-update-rate': batch_update_rate,
    'lookup-ns': lookup_ns,
  };
}

/** Runs native/.output/map_bench as a child; on abort it is killed by its PID. */
function runC(entries: number, cpu: number | undefined, ctx: RunContext): Promise<Samples> {
  ctx.signal.throwIfAborted();
  const argv = [MAP_BENCH, join(BPF_OUTPUT_DIR, benchMapsSpec.file), 'bench_hash', String(entries)];
  // taskset execs the program, so the PID we hold is map_bench's own.
  const [cmd, ...args] = cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const kill = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid, 'SIGTERM');
      }
    };
    ctx.signal.addEventListener('abort', kill, { once: true });
    if (child.pid !== undefined) ctx.progress(`(pid ${child.pid}) `);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error) => {
      ctx.signal.removeEventListener('abort', kill);
      reject(error);
    });
    child.on('close', (code, sig) => {
      ctx.signal.removeEventListener('abort', kill);
      if (ctx.signal.aborted) return reject(ctx.signal.reason as Error);
      if (code !== 0) {
        return reject(new BenchError(`map_bench exited with ${code ?? sig}: ${stderr.trim()}`));
      }
      try {
        resolvePromise(parseMapBench(stdout));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** Pins this process's main thread (the one making the bpf() calls) to a CPU. */
function pinMainThread(cpu: number): void {
  execFileSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

export const mapsScenario: Scenario = {
  name: 'maps',
  modes: MODES,
  metrics: METRICS,
  plan({ quick, cpu }: ScenarioOptions) {
    for (const [path, how] of [
      [MAP_BENCH, 'make -C native'],
      [join(BPF_OUTPUT_DIR, benchMapsSpec.file), 'make -C bpf'],
    ] as const) {
      if (!existsSync(path)) throw new BenchError(`${path} does not exist: build it with '${how}'`);
    }
    if (cpu !== undefined) pinMainThread(cpu);
    const entries = quick ? QUICK_ENTRIES : ENTRIES;
    const params: Params = { entries };
    if (cpu !== undefined) params.cpu = cpu;
    return {
      params,
      run(mode, ctx) {
        switch (mode) {
          case 'c-libbpf':
            return runC(entries, cpu, ctx);
          case 'sluice-ts':
            return runTs(entries, ctx.signal);
          default:
            return Promise.reject(new Error(`maps: unknown mode '${mode}'`));
        }
      },
    };
  },
};
