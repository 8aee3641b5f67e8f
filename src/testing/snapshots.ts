/** Reading a source's snapshot stream in tests. */
import assert from 'node:assert/strict';
import type { SourceSnapshot } from '../sources/source.js';

/** A function giving the stream's next snapshot; the stream must not have ended. */
export function snapshotReader(
  snapshots: AsyncIterator<SourceSnapshot>,
): () => Promise<SourceSnapshot> {
  return async () => {
    const r = await snapshots.next();
    assert.equal(r.done, false);
    return r.value;
  };
}
