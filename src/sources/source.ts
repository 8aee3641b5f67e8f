/**
 * What the agent watches, whatever the origin: the Nodes, Services and EndpointSlices of the
 * cluster, as the model's normalized ClusterState. A manifests directory (manifests.ts) and,
 * later, the Kubernetes API implement the same interface, so nothing downstream knows which ran.
 *
 * Sources are level-triggered: each snapshot is the whole current state, never a delta, and a
 * consumer that falls behind only ever sees the latest one (intermediate states are skipped).
 * That is what makes reconcile idempotent and restart-safe. Each snapshot also says which
 * objects changed since the one before (`changes`, merged when snapshots are coalesced), so the
 * agent re-plans only the Services they belong to.
 */
import type { ClusterState, ObjectKey } from '../model/index.js';

/** An object the source could not use: it is left out, logged once and counted. */
export interface SkippedObject {
  /** `file#index` for manifests, the object's API path for the Kubernetes API. */
  where: string;
  kind: string;
  /** namespace/name, or name for cluster-scoped kinds; '' when unreadable. */
  name: string;
  /** `field.path: what is wrong`. */
  reason: string;
}

export interface SourceSnapshot {
  /** 1 for the first snapshot, then +1 per change the source saw. */
  generation: number;
  /**
   * Identity of the input the snapshot was built from (hex sha256). A writer that knows what it
   * wrote can compute the same digest and wait until the agent reports it programmed.
   */
  digest: string;
  /** Nodes, Services and EndpointSlices only; the controllers of the model did not run. */
  state: ClusterState;
  skipped: SkippedObject[];
  /**
   * The objects (namespace/name; name for Nodes) added, changed or removed since the previous
   * snapshot the consumer took. Absent: anything may have changed (the first snapshot, a
   * resync): the consumer does a full reconcile.
   */
  changes?: SourceChanges;
}

export interface SourceChanges {
  services: ReadonlySet<ObjectKey>;
  endpointSlices: ReadonlySet<ObjectKey>;
  nodes: ReadonlySet<string>;
}

/** Changes of two consecutive snapshots as one (for a consumer that skipped the first). */
export function mergeChanges(
  a: SourceChanges | undefined,
  b: SourceChanges | undefined,
): SourceChanges | undefined {
  if (!a || !b) return undefined;
  return {
    services: new Set([...a.services, ...b.services]),
    endpointSlices: new Set([...a.endpointSlices, ...b.endpointSlices]),
    nodes: new Set([...a.nodes, ...b.nodes]),
  };
}

/** A snapshot replacing one the consumer never took: its changes include the skipped one's. */
export function coalesceSnapshots(skipped: SourceSnapshot, next: SourceSnapshot): SourceSnapshot {
  const changes = mergeChanges(skipped.changes, next.changes);
  const out: SourceSnapshot = { ...next };
  if (changes) out.changes = changes;
  else delete out.changes;
  return out;
}

export interface Source {
  /** For logs: `manifests:/path`, `kubernetes`. */
  readonly description: string;
  /**
   * The current state first, then one snapshot per change; changes arriving while the consumer
   * is busy are coalesced into the latest. Ends when close() is called; throws when the source
   * can no longer be read at all.
   */
  snapshots(): AsyncIterableIterator<SourceSnapshot, undefined>;
  close(): Promise<void>;
}
