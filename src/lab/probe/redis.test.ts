import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeRedisCommand, parseRedisReply } from './redis.js';

describe('RESP', () => {
  it('encodes a command as an array of bulk strings', () => {
    assert.equal(
      encodeRedisCommand(['SET', 'k', 'héllo']).toString(),
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n',
    );
  });

  it('parses each reply type, and waits for incomplete ones', () => {
    assert.deepEqual(parseRedisReply(Buffer.from('+PONG\r\n')), { value: 'PONG', error: false });
    assert.deepEqual(parseRedisReply(Buffer.from('-ERR unknown command\r\n')), {
      value: 'ERR unknown command',
      error: true,
    });
    assert.deepEqual(parseRedisReply(Buffer.from(':42\r\n')), { value: '42', error: false });
    assert.deepEqual(parseRedisReply(Buffer.from('$5\r\nhello\r\n')), {
      value: 'hello',
      error: false,
    });
    assert.deepEqual(parseRedisReply(Buffer.from('$-1\r\n')), { value: '(nil)', error: false });
    assert.deepEqual(parseRedisReply(Buffer.from('*2\r\n$1\r\na\r\n:2\r\n')), {
      value: 'a 2',
      error: false,
    });
    assert.equal(parseRedisReply(Buffer.from('$5\r\nhel')), undefined);
    assert.equal(parseRedisReply(Buffer.from('*2\r\n$1\r\na\r\n')), undefined);
  });
});
