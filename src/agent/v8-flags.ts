/**
 * The V8 flags the agent's Node process runs with. Every launcher of the agent passes them:
 * `./sluice agent`, the lab (src/lab/agents.ts) and the control-plane bench's worker, which
 * times the agent's reconcile as the agent runs it.
 *
 * Why a larger young generation: a full reconcile builds the node's whole plan at once (at 10k
 * services x 10 endpoints, ~100 MB of objects that all live on), and nearly everything it
 * allocates survives. With V8's default semi-space (starting at 1 MB, growing to 16 MB) the
 * scavenger runs six times during such a pass and copies the survivors twice each (to the
 * other semi-space, then to the old generation): ~50-60 ms of a ~460 ms pass. A semi-space
 * that starts at 32 MB leaves one scavenge (~35 ms) and the pass measured ~400 ms. The cost
 * is memory only when used: the pages are committed as the young generation fills (the
 * agent's resident size grows by at most ~100 MB during a pass at that scale, nothing at rest).
 */
export const AGENT_V8_FLAGS: readonly string[] = [
  '--min-semi-space-size=32',
  '--max-semi-space-size=64',
];
