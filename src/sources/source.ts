/**
 * What the agent watches, whatever the origin: the Nodes, Services and EndpointSlices of the
 * cluster, as the model's normalized ClusterState. A manifests directory (manifests.ts) and,
 * later, the Kubernetes API implement the same interface, so nothing downstream knows which ran.
 *
 * Sources are level-triggered: each snapshot is the whole current state, never a delta, and a
 * consumer that falls behind only ever sees the latest one (intermediate states are skipped).
 * That is what makes reconcile idempotent and restart-safe.
 */
import type { ClusterState } from '../model/index.js';

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
