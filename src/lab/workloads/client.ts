/**
 * A client of the echo server's protocol (native/echo_server.c), as functions and as a script
 * that runs inside a lab namespace and prints one JSON line:
 *
 *   ip netns exec NS node dist/lab/workloads/client.js MODE HOST PORT [ARGS...]
 *
 *   whoami HOST PORT            TCP `whoami\n`            -> {"name": "web-0"}
 *   echo HOST PORT SIZE ROUNDS  TCP ping-pong, verified   -> {"rounds": N, "bytes": N}
 *   udp HOST PORT PAYLOAD       one datagram              -> {"reply": "..."}
 *   http HOST PORT PATH COUNT   COUNT requests, one keep-alive connection
 *                                                         -> {"statuses": [...], "bodies": [...]}
 *   many HOST PORT CONNS        CONNS concurrent connections, each whoami + 1 KiB echo
 *                                                         -> {"ok": N, "names": {...}}
 *
 * Exit 0 on success, 1 on a failed exchange (the JSON then has "error"), 2 on usage errors.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

const DEFAULT_TIMEOUT_MS = 5000;

/** A connected socket whose incoming bytes can be awaited in pieces. */
class Conversation {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  static open(host: string, port: number, timeoutMs: number): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${host}:${port}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Conversation(socket));
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves with the first `n` bytes, or the bytes up to `until` included. */
  async read(what: { n: number } | { until: string }, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end =
        'n' in what
          ? this.buffered.length >= what.n
            ? what.n
            : -1
          : ((i) => (i < 0 ? -1 : i + what.until.length))(this.buffered.indexOf(what.until));
      if (end >= 0) {
        const out = this.buffered.subarray(0, end);
        this.buffered = this.buffered.subarray(end);
        return out;
      }
      if (this.failure) throw this.failure;
      if (this.ended) throw new Error('connection closed by the server');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/** The name of the pod whose echo server answered on TCP. */
export async function tcpWhoami(
  host: string,
  port: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<string> {
  const c = await Conversation.open(host, port, timeoutMs);
  try {
    c.write('whoami\n');
    return (await c.read({ until: '\n' }, timeoutMs)).toString().trimEnd();
  } finally {
    c.close();
  }
}

/** Ping-pong: `rounds` messages of `size` bytes, each echoed back exactly before the next. */
export async function tcpEcho(
  host: string,
  port: number,
  size: number,
  rounds: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ rounds: number; bytes: number }> {
  const c = await Conversation.open(host, port, timeoutMs);
  try {
    for (let i = 0; i < rounds; i++) {
      const message = Buffer.alloc(size, 97 + (i % 26)); // never a control message
      c.write(message);
      const reply = await c.read({ n: size }, timeoutMs);
      if (!reply.equals(message))
        throw new Error(`round ${i}: the echo differs from what was sent`);
    }
    return { rounds, bytes: size * rounds };
  } finally {
    c.close();
  }
}

/** One datagram, one reply. */
export function udpRequest(
  host: string,
  port: number,
  payload: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no UDP answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message.toString());
    });
    socket.send(payload, port, host);
  });
}

/** `count` GET requests on one keep-alive connection; the connection must stay open. */
export async function httpGets(
  host: string,
  port: number,
  path: string,
  count: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ statuses: number[]; bodies: string[] }> {
  const c = await Conversation.open(host, port, timeoutMs);
  const statuses: number[] = [];
  const bodies: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      c.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: sluice-lab\r\n\r\n`);
      const head = (await c.read({ until: '\r\n\r\n' }, timeoutMs)).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
      if (!Number.isInteger(status) || !Number.isInteger(length))
        throw new Error(`bad response: ${head}`);
      if (/\r\nconnection: *close/i.test(head))
        throw new Error(`request ${i}: server closes the connection`);
      statuses.push(status);
      bodies.push((await c.read({ n: length }, timeoutMs)).toString());
    }
    return { statuses, bodies };
  } finally {
    c.close();
  }
}

/** `conns` connections at once, each: whoami, then a 1 KiB echo. Counts answers per name. */
export async function tcpMany(
  host: string,
  port: number,
  conns: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ ok: number; names: Record<string, number> }> {
  const opened = await Promise.all(
    Array.from({ length: conns }, () => Conversation.open(host, port, timeoutMs)),
  );
  const names: Record<string, number> = {};
  try {
    await Promise.all(
      opened.map(async (c, i) => {
        c.write('whoami\n');
        const name = (await c.read({ until: '\n' }, timeoutMs)).toString().trimEnd();
        names[name] = (names[name] ?? 0) + 1;
        const message = Buffer.alloc(1024, 65 + (i % 26));
        c.write(message);
        if (!(await c.read({ n: 1024 }, timeoutMs)).equals(message))
          throw new Error(`connection ${i}: bad echo`);
      }),
    );
  } finally {
    for (const c of opened) c.close();
  }
  return { ok: conns, names };
}

async function main(argv: string[]): Promise<number> {
  const [mode, host, portText, ...rest] = argv;
  const port = Number(portText);
  const usage = 'usage: client.js whoami|echo|udp|http|many HOST PORT [ARGS...]';
  if (mode === undefined || host === undefined || !Number.isInteger(port)) {
    console.error(usage);
    return 2;
  }
  const num = (i: number, fallback: number): number => Number(rest[i] ?? fallback);
  let result: unknown;
  try {
    switch (mode) {
      case 'whoami':
        result = { name: await tcpWhoami(host, port) };
        break;
      case 'echo':
        result = await tcpEcho(host, port, num(0, 64), num(1, 100));
        break;
      case 'udp':
        result = { reply: await udpRequest(host, port, rest[0] ?? 'whoami') };
        break;
      case 'http':
        result = await httpGets(host, port, rest[0] ?? '/', num(1, 1));
        break;
      case 'many':
        result = await tcpMany(host, port, num(0, 100));
        break;
      default:
        console.error(usage);
        return 2;
    }
  } catch (error) {
    console.log(JSON.stringify({ error: (error as Error).message }));
    return 1;
  }
  console.log(JSON.stringify(result));
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
