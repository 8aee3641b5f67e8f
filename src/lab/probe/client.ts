/**
 * The probe client: runs inside a lab namespace (and the pod's cgroup, so socket-level load
 * balancing sees it exactly as it sees the pod's own connections), makes `count` connections to
 * one address and prints one JSON line with what happened to each.
 *
 *   node client.js '{"ip":"198.19.0.10","port":80,"proto":"http","count":3,"timeoutMs":1000}'
 *
 * Backends identify themselves: the lab's echo server answers `whoami` (TCP line, UDP datagram)
 * and `GET /hostname` (HTTP) with the pod's name.
 */
import { createSocket } from 'node:dgram';
import { Socket } from 'node:net';
import type { ProbeAttempt, ProbeRequest } from './protocol.js';
import { encodeRedisCommand, parseRedisReply } from './redis.js';

const now = () => process.hrtime.bigint();
const micros = (since: bigint) => Number((now() - since) / 1000n);

/** One TCP exchange: connect, write the request, read until `done` says the reply is whole. */
function tcpExchange(
  req: ProbeRequest,
  payload: Buffer | null,
  done: (reply: Buffer) => boolean,
): Promise<{ reply: Buffer; connectUs: number }> {
  return new Promise((resolve, reject) => {
    const started = now();
    const socket = new Socket();
    let connectUs = 0;
    let reply = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, req.timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve({ reply, connectUs });
    };
    socket.once('error', finish);
    const to = { host: req.ip, port: req.port };
    socket.connect(req.sourcePort ? { ...to, localPort: req.sourcePort } : to, () => {
      connectUs = micros(started);
      if (payload) socket.write(payload);
      else finish();
    });
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (done(reply)) finish();
    });
    socket.once('end', () =>
      finish(
        reply.length
          ? undefined
          : Object.assign(new Error('closed by peer'), { code: 'ECONNRESET' }),
      ),
    );
  });
}

function udpExchange(req: ProbeRequest, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, req.timeoutMs);
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.close();
      reject(e);
    });
    socket.once('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    // connect() first so an ICMP port unreachable surfaces as ECONNREFUSED.
    const connect = () => socket.connect(req.port, req.ip, () => socket.send(payload));
    if (req.sourcePort) socket.bind(req.sourcePort, connect);
    else connect();
  });
}

async function attempt(req: ProbeRequest): Promise<ProbeAttempt> {
  const started = now();
  try {
    let backend: string | undefined;
    let reply: string | undefined;
    switch (req.proto) {
      case 'tcp': {
        const line = req.request ?? 'whoami';
        const r = await tcpExchange(req, Buffer.from(`${line}\n`), (b) => b.includes(10));
        reply = r.reply.toString().trim();
        if (line === 'whoami') backend = reply;
        break;
      }
      case 'udp': {
        const msg = await udpExchange(req, Buffer.from(req.request ?? 'whoami'));
        reply = msg.toString().trim();
        if (!req.request || req.request === 'whoami') backend = reply;
        break;
      }
      case 'http': {
        const [method = 'GET', path = '/hostname'] = (req.request ?? 'GET /hostname').split(/\s+/);
        const head = `${method} ${path} HTTP/1.1\r\nHost: ${req.ip}\r\nConnection: close\r\n\r\n`;
        const r = await tcpExchange(req, Buffer.from(head), (b) => {
          const text = b.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return false;
          const len = /content-length:\s*(\d+)/i.exec(text.slice(0, end));
          return len ? b.length >= end + 4 + Number(len[1]) : false;
        });
        const text = r.reply.toString();
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        reply = text.slice(text.indexOf('\r\n\r\n') + 4).trim();
        if (status < 200 || status >= 400) {
          return {
            ok: false,
            error: `HTTP ${status}`,
            code: 'HTTP_STATUS',
            latencyUs: micros(started),
            reply,
          };
        }
        if (path === '/hostname') backend = reply;
        break;
      }
      case 'redis': {
        const argv = (req.request ?? 'PING').split(/\s+/);
        const r = await tcpExchange(
          req,
          encodeRedisCommand(argv),
          (b) => parseRedisReply(b) !== undefined,
        );
        const parsed = parseRedisReply(r.reply);
        reply = parsed?.value;
        if (parsed?.error)
          return {
            ok: false,
            error: parsed.value,
            code: 'REDIS_ERROR',
            latencyUs: micros(started),
            reply,
          };
        break;
      }
      case 'connect': {
        await tcpExchange(req, null, () => true);
        break;
      }
    }
    return {
      ok: true,
      latencyUs: micros(started),
      ...(backend ? { backend } : {}),
      ...(reply !== undefined ? { reply } : {}),
    };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { ok: false, error: e.message, code: e.code ?? 'ERROR', latencyUs: micros(started) };
  }
}

const request = JSON.parse(process.argv[2] ?? '{}') as ProbeRequest;
const attempts: ProbeAttempt[] = [];
for (let i = 0; i < request.count; i++) attempts.push(await attempt(request));
process.stdout.write(`${JSON.stringify({ attempts })}\n`);
