/**
 * libbpf's log, captured instead of printed: libbpf reports through a printf-style callback,
 * which we format with libc's vsnprintf and hand to whoever is collecting, so a failed load can
 * throw with the lines that explain it.
 */
import koffi from 'koffi';
import { libbpf, libcApi, PrintFn } from './libbpf.js';

const FORMAT_BUF = Buffer.alloc(16384);
const LEVELS = ['warn', 'info', 'debug'] as const;

export type LogLevel = (typeof LEVELS)[number];

export interface LogLine {
  level: LogLevel;
  text: string;
}

let collector: LogLine[] | null = null;
let installed = false;

function onPrint(level: number, fmt: string, args: bigint): number {
  // Outside a collection libbpf's chatter is dropped: it only matters next to a failure.
  if (!collector) return 0;
  const n = libcApi.vsnprintf(FORMAT_BUF, FORMAT_BUF.length, fmt, args) as number;
  if (n <= 0) return 0;
  const text = FORMAT_BUF.toString('utf8', 0, Math.min(n, FORMAT_BUF.length - 1)).trimEnd();
  for (const line of text.split('\n')) collector.push({ level: LEVELS[level] ?? 'debug', text: line });
  return 0;
}

function install(): void {
  if (installed) return;
  // Registered once for the process lifetime: libbpf keeps the pointer in a global.
  const cb = koffi.register(onPrint, koffi.pointer(PrintFn));
  libbpf.set_print(cb);
  installed = true;
}

/** Runs fn with libbpf's messages collected into the array it receives. */
export function withLibbpfLog<T>(fn: (log: readonly LogLine[]) => T): T {
  install();
  const outer = collector;
  const log: LogLine[] = [];
  collector = log;
  try {
    return fn(log);
  } finally {
    collector = outer;
  }
}

/** The last n lines of a log, for error messages. */
export function tail(log: readonly LogLine[], n: number): string {
  return log
    .slice(-n)
    .map((l) => l.text)
    .join('\n');
}
