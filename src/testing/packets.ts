/** Test support: compares a packet a program wrote with the one a test expects. */
import assert from 'node:assert/strict';
import type { PacketSpec } from '../packet/index.js';
import { buildPacket, checksumErrors, parsePacket } from '../packet/index.js';

/**
 * got must be exactly the packet `expected` builds, byte for byte, with every checksum right.
 * On a difference the parsed packets are compared first, so the failure names the field.
 */
export function assertPacket(got: Buffer, expected: PacketSpec, what: string): void {
  assert.deepEqual(checksumErrors(got), [], `${what}: checksums`);
  const want = buildPacket(expected);
  if (!got.equals(want)) {
    assert.deepEqual(parsePacket(got), parsePacket(want), `${what}: packet`);
    assert.fail(`${what}: packets differ byte for byte`);
  }
}
