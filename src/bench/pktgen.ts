/**
 * The packet generator and packet counters of `sluice bench pps` from TypeScript: runs
 * native/xdp_gen (docs/pps.md) inside lab namespaces and parses what it prints. The parsing and
 * the rate arithmetic are pure; everything else runs commands in a lab.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BPF_OUTPUT_DIR } from '../bpf/object.js';
import type { LabTopology, Target } from '../lab/topology/index.js';
import { run } from '../lab/topology/exec.js';
import { fabricNetns } from '../lab/topology/naming.js';
import { inNetns } from '../lab/topology/netns.js';
import { BenchError } from './errors.js';

export const XDP_GEN = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../native/.output/xdp_gen',
);
export const GEN_OBJECT = join(BPF_OUTPUT_DIR, 'xdp_gen.bpf.o');
export const COUNT_OBJECT = join(BPF_OUTPUT_DIR, 'xdp_count.bpf.o');
export const BASELINE_OBJECT = join(BPF_OUTPUT_DIR, 'xdp_baseline.bpf.o');
export const FWD_CT_OBJECT = join(BPF_OUTPUT_DIR, 'xdp_fwd_ct.bpf.o');

/** Bytes per generated frame (bpf/include/pktgen.h). */
export const FRAME_BYTES = 64;
/** `steady`: this many flows, repeated (issue 10). */
export const STEADY_FLOWS = 10_000;
/**
 * `new`: source addresses for fresh 5-tuples, a /18 of the benchmarking range the lab uses for
 * nothing (nodes are in 198.18.0.0/24, pods in 198.18.16.0/20, bench fillers in 198.18.128.0/17):
 * 16,384 addresses x 64,512 ports before a tuple repeats.
 */
export const NEW_FLOW_SOURCES = { base: '198.18.64.0', count: 16_384 } as const;

export type Flows = 'new' | 'steady';

/** A lab target, or the fabric namespace (no Target: nothing of the cluster runs there). */
export type Where = { fabric: true } | { target: Target };

export interface GenResult {
  /** Frames the program handed to the device (frames its peer could not take were dropped). */
  packets: number;
  seconds: number;
  cpu: number;
  flows: string;
}

export interface NapiInstance {
  id: number;
  /** The threaded NAPI's kernel thread; 0 when the NAPI is not threaded. */
  pid: number;
}

function parseJson(what: string, text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v))
      return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new BenchError(`${what} printed an unexpected result: ${text.trim() || '(nothing)'}`);
}

function count(what: string, v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new BenchError(`${what}: field ${field} is not a non-negative number: ${String(v)}`);
  }
  return v;
}

/** `xdp_gen send` output. */
export function parseGenResult(stdout: string): GenResult {
  const o = parseJson('xdp_gen send', stdout);
  const seconds = count('xdp_gen send', o.seconds, 'seconds');
  if (seconds === 0) throw new BenchError('xdp_gen send: ran for 0 seconds');
  return {
    packets: count('xdp_gen send', o.packets, 'packets'),
    seconds,
    cpu: count('xdp_gen send', o.cpu, 'cpu'),
    flows: String(o.flows),
  };
}

/** One reply line of `xdp_gen attach`: the packets counted so far. */
export function parseCountLine(line: string): number {
  return count('xdp_gen attach', parseJson('xdp_gen attach', line).packets, 'packets');
}

/** `xdp_gen napi` output. */
export function parseNapiList(stdout: string): NapiInstance[] {
  const list = parseJson('xdp_gen napi', stdout).napi;
  if (!Array.isArray(list)) throw new BenchError(`xdp_gen napi: no list in ${stdout.trim()}`);
  return list.map((n: Record<string, unknown>) => ({
    id: count('xdp_gen napi', n.id, 'id'),
    pid: count('xdp_gen napi', n.pid, 'pid'),
  }));
}

/**
 * /proc/PID/schedstat: nanoseconds the task ran on a CPU (first field). Exact, not sampled at
 * ticks; on this kernel (no CONFIG_IRQ_TIME_ACCOUNTING) it includes softirq work done while
 * the task was on the CPU.
 */
export function parseSchedstat(text: string): number {
  const ns = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(ns) || ns < 0) throw new BenchError(`unexpected schedstat: ${text.trim()}`);
  return ns;
}

/** Packets per second from a counter's difference over a duration. */
export function packetRate(packets: number, seconds: number): number {
  if (!(seconds > 0)) throw new BenchError(`packet rate over ${seconds} s`);
  return packets / seconds;
}

/** CPU nanoseconds per packet; fails rather than divide by no packets. */
export function nsPerPacket(cpuNs: number, packets: number): number {
  if (!(packets > 0)) throw new BenchError('no packet arrived: cannot give a CPU cost per packet');
  return cpuNs / packets;
}

export interface Addressing {
  srcMac: string;
  dstMac: string;
  /** The sender's own address (used by `steady`). */
  srcIp: string;
  dstIp: string;
  dport: number;
}

/** The `xdp_gen` addressing and flow options for a flow regime. */
export function generatorArgs(a: Addressing, flows: Flows): string[] {
  const source =
    flows === 'new'
      ? ['--src-ip', NEW_FLOW_SOURCES.base, '--saddr-count', String(NEW_FLOW_SOURCES.count)]
      : ['--src-ip', a.srcIp, '--saddr-count', '1'];
  return [
    '--src-mac',
    a.srcMac,
    '--dst-mac',
    a.dstMac,
    ...source,
    '--dst-ip',
    a.dstIp,
    '--dport',
    String(a.dport),
    '--flows',
    flows,
  ];
}

export interface SendOptions {
  addressing: Addressing;
  flows: Flows;
  seconds: number;
  cpu: number;
  /** The device to send out of, in the external namespace. */
  dev?: string;
}

/** Sends from the lab's external namespace (out of its eth0) for `seconds`, pinned to `cpu`. */
export async function runGenerator(lab: LabTopology, o: SendOptions): Promise<GenResult> {
  const argv = [
    'nice',
    '-n',
    String(NICE),
    XDP_GEN,
    'send',
    '--obj',
    GEN_OBJECT,
    '--dev',
    o.dev ?? 'eth0',
    ...generatorArgs(o.addressing, o.flows),
    '--seconds',
    String(o.seconds),
    '--cpu',
    String(o.cpu),
  ];
  const r = await lab.exec('external', argv, {
    timeoutMs: o.seconds * 1000 + 20_000,
    allowFailure: true,
  });
  if (r.code !== 0) {
    const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    throw new BenchError(`xdp_gen send failed (${how}): ${r.stderr.trim() || 'no message'}`);
  }
  return parseGenResult(r.stdout);
}

/**
 * An XDP program attached by an `xdp_gen attach` process: it holds the bpf_link, so the
 * program goes when the process ends (close(), or this process dying closes its stdin).
 */
export class XdpAttachment {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly what: string,
    private readonly stderr: () => string,
  ) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async attach(
    lab: LabTopology,
    where: Where,
    dev: string,
    object: string,
    prog: string,
    extra: readonly string[] = [],
  ): Promise<XdpAttachment> {
    const argv = [XDP_GEN, 'attach', '--obj', object, '--prog', prog, '--dev', dev, ...extra];
    const [file, ...args] =
      'fabric' in where ? inNetns(fabricNetns(lab.names), argv) : lab.command(where.target, argv);
    const child = spawn(file as string, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', () => {}); // reported through the missing first line
    const place = 'fabric' in where ? 'the fabric' : JSON.stringify(where.target);
    const a = new XdpAttachment(child, `${prog} on ${dev} in ${place}`, () => err.trim());
    const first = await a.nextLine();
    parseJson('xdp_gen attach', first);
    return a;
  }

  private async nextLine(): Promise<string> {
    const r = await this.lines.next();
    if (r.done) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // let stderr arrive
      throw new BenchError(`xdp_gen attach (${this.what}) ended: ${this.stderr() || 'no output'}`);
    }
    return r.value;
  }

  /** Packets counted so far (summed over CPUs). */
  async packets(): Promise<number> {
    this.child.stdin.write('\n');
    return parseCountLine(await this.nextLine());
  }

  /** Detaches: ends the process (stdin EOF) and waits for it. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs a command in the lab's fabric namespace (not a Target: nothing runs there otherwise). */
export async function execFabric(lab: LabTopology, argv: readonly string[]): Promise<string> {
  const r = await run(inNetns(fabricNetns(lab.names), argv), { allowFailure: true });
  if (r.code !== 0) {
    throw new BenchError(`${argv.join(' ')} in ${fabricNetns(lab.names)}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

async function execWhere(lab: LabTopology, where: Where, argv: readonly string[]): Promise<string> {
  if ('fabric' in where) return execFabric(lab, argv);
  const r = await lab.exec(where.target, argv, { allowFailure: true });
  if (r.code !== 0) throw new BenchError(`${argv.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A device's MAC address. */
export async function macOf(lab: LabTopology, where: Where, dev: string): Promise<string> {
  const out = await execWhere(lab, where, ['ip', '-j', 'link', 'show', 'dev', dev]);
  const [link] = JSON.parse(out) as { address?: string }[];
  if (!link?.address) throw new BenchError(`no MAC address for ${dev}`);
  return link.address;
}

/**
 * Gives a veth a threaded NAPI: GRO on (a veth has NAPI only with GRO or an XDP program, and
 * takes XDP-redirected frames only then) and /sys/class/net/DEV/threaded = 1. Returns the NAPI
 * kernel thread's pid, found with the netdev netlink family (xdp_gen napi) and checked by name.
 */
export async function threadedNapi(lab: LabTopology, where: Where, dev: string): Promise<number> {
  await execWhere(lab, where, ['ethtool', '-K', dev, 'gro', 'on']);
  await execWhere(lab, where, ['sh', '-c', `echo 1 > /sys/class/net/${dev}/threaded`]);
  return napiThread(lab, where, dev);
}

/** The pid of DEV's threaded NAPI thread (it can change when an XDP program comes or goes). */
export async function napiThread(lab: LabTopology, where: Where, dev: string): Promise<number> {
  const list = parseNapiList(await execWhere(lab, where, [XDP_GEN, 'napi', '--dev', dev]));
  const threaded = list.filter((n) => n.pid > 0);
  const [napi] = threaded;
  if (threaded.length !== 1 || !napi) {
    throw new BenchError(`${dev}: expected one threaded NAPI, found ${JSON.stringify(list)}`);
  }
  const comm = readFileSync(`/proc/${napi.pid}/comm`, 'utf8').trim();
  if (comm !== `napi/${dev}-${napi.id}`.slice(0, 15)) {
    throw new BenchError(
      `${dev}: NAPI thread ${napi.pid} is '${comm}', not napi/${dev}-${napi.id}`,
    );
  }
  return napi.pid;
}

/**
 * The generator runs at nice -10: it stands for other machines, and at nice 0 it would get only
 * a fair share among whatever else this machine runs.
 */
export const NICE = -10;

/**
 * Pins a NAPI thread to one CPU for a run. `realtime`: SCHED_FIFO 1 (the lowest real-time
 * priority), for a thread alone on its CPU: on a real node NAPI runs in softirq, ahead of every
 * task, the moment it has work, while as an ordinary task on a busy machine a woken NAPI thread
 * waits behind other tasks as its ring (256 frames) overflows, and what is measured is the
 * scheduler. It uses the CPU only while packets arrive, and real-time throttling leaves others
 * 5%. Never beside the generator: a real-time thread there starves the generator that feeds it
 * (runs stalled for tens of seconds). Otherwise nice NICE, like the generator.
 * unpinThread puts it back to SCHED_OTHER, nice 0.
 */
export async function pinThread(pid: number, cpu: number, realtime: boolean): Promise<void> {
  for (const argv of [
    ['taskset', '-pc', String(cpu), String(pid)],
    realtime
      ? ['chrt', '-f', '-p', '1', String(pid)]
      : ['renice', '-n', String(NICE), '-p', String(pid)],
  ]) {
    const r = await run(argv, { allowFailure: true });
    if (r.code !== 0) throw new BenchError(`${argv.join(' ')}: ${r.stderr.trim()}`);
  }
}

export async function unpinThread(pid: number): Promise<void> {
  await run(['chrt', '-o', '-p', '0', String(pid)], { allowFailure: true });
  await run(['renice', '-n', '0', '-p', String(pid)], { allowFailure: true });
}

/** Nanoseconds a thread has run so far. */
export function threadCpuNs(pid: number): number {
  return parseSchedstat(readFileSync(`/proc/${pid}/schedstat`, 'utf8'));
}
