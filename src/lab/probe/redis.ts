/** Just enough RESP (the Redis protocol) for probes: encode a command, parse one reply. */

export function encodeRedisCommand(argv: string[]): Buffer {
  const parts = [`*${argv.length}\r\n`];
  for (const arg of argv) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''));
}

export interface RedisReply {
  value: string;
  error: boolean;
}

/** One complete reply, or undefined while more bytes are needed. Arrays are joined by spaces. */
export function parseRedisReply(buf: Buffer): RedisReply | undefined {
  const parsed = parseAt(buf.toString('utf8'), 0);
  return parsed?.reply;
}

function parseAt(text: string, at: number): { reply: RedisReply; next: number } | undefined {
  const eol = text.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const type = text[at];
  const line = text.slice(at + 1, eol);
  switch (type) {
    case '+':
      return { reply: { value: line, error: false }, next: eol + 2 };
    case '-':
      return { reply: { value: line, error: true }, next: eol + 2 };
    case ':':
      return { reply: { value: line, error: false }, next: eol + 2 };
    case '$': {
      const len = Number(line);
      if (len < 0) return { reply: { value: '(nil)', error: false }, next: eol + 2 };
      const start = eol + 2;
      if (Buffer.byteLength(text.slice(start)) < len + 2) return undefined;
      return {
        reply: { value: text.slice(start, start + len), error: false },
        next: start + len + 2,
      };
    }
    case '*': {
      const n = Number(line);
      const values: string[] = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseAt(text, next);
        if (!item) return undefined;
        values.push(item.reply.value);
        next = item.next;
      }
      return { reply: { value: values.join(' '), error: false }, next };
    }
    default:
      return { reply: { value: `unexpected reply: ${line}`, error: true }, next: eol + 2 };
  }
}
