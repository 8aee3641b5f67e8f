/**
 * The per-node agent: source snapshots in, the node's load-balancing maps out.
 *
 *   source ──snapshot + changes──► Reconciler ──► applyOps ──► pinned maps
 *                                  (full: plan + diff everything; incremental: the changed
 *                                   Services' plans, the entries they touch)
 *
 * The programmed state starts as what the pinned maps hold (a restarted agent adopts its
 * predecessor's work: same ids, no flush, a full pass) and follows every applied operation.
 * After a failed write the maps are read back (they are the truth) and a full reconcile is
 * retried with backoff; every prefix of a diff is consistent, so the datapath is never
 * half-written in between.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openPinnedMap } from '../bpf/pinned.js';
import { lbTcSpec } from '../datapath/lb-tc.js';
import type { SkippedObject, Source, SourceSnapshot } from '../sources/source.js';
import { SocketAcceleration } from './acceleration.js';
import { readProgrammed } from './apply.js';
import type { AgentConfig } from './config.js';
import type { NodeDatapath } from './datapath.js';
import { openDatapath, preflight } from './datapath.js';
import { AgentError } from './errors.js';
import type { CtGcPass } from './ct-gc.js';
import { GC_MAX_INTERVAL_MS, collectExpiredFlows, nextGcIntervalMs } from './ct-gc.js';
import { countOps } from './diff.js';
import type { HealthServer } from './health.js';
import { startHealthServer } from './health.js';
import { MaglevSync } from './maglev.js';
import { programmedSize } from './programmed.js';
import { Reconciler } from './reconciler.js';

export interface AgentOptions {
  nodeName: string;
  config: AgentConfig;
  source: Source;
  logger: Logger;
  /** Opens the datapath; tests may substitute their own. Default: openDatapath. */
  openDatapath?: (config: AgentConfig, nodeIP: string) => NodeDatapath;
}

export interface ProgrammedStatus {
  generation: number;
  digest: string;
  /** Map operations of the last reconcile, by map and kind. */
  ops: Record<string, number>;
  at: string;
}

export interface AgentStatus {
  ready: boolean;
  node: string;
  source: string;
  programmed: ProgrammedStatus | null;
  /** The latest snapshot seen (it may not be programmed yet). */
  seen: { generation: number; digest: string } | null;
  /** Objects of the latest snapshot left out, and how many skips were logged in total. */
  skipped: { current: number; total: number };
  entries: Record<string, number>;
  attachments: NodeDatapath['attachments'];
  lastError: string | null;
  /** Expired conntrack entries deleted by the agent (per-packet LB only; see ct-gc.ts). */
  conntrackGC: { passes: number; deleted: number; lastPass: CtGcPass | null };
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/** Pod interfaces are re-scanned on every reconcile and at least this often. */
const POD_INTERFACE_SCAN_MS = 2_000;

export class Agent {
  private datapath: NodeDatapath | undefined;
  private health: HealthServer | undefined;
  private reconciler: Reconciler | undefined;
  private stopping = false;
  private latest: SourceSnapshot | undefined;
  private loggedSkips = new Set<string>();
  private skippedTotal = 0;
  private wakeup: (() => void) | undefined;
  private nodeIP = '';
  private podAttachments: NodeDatapath['attachments'] = [];
  private podFailures = new Set<string>();
  private status: AgentStatus;
  private readonly maglev: MaglevSync;
  /** Socket acceleration (acceleration.ts): started with the datapath, one call per reconcile. */
  private acceleration: SocketAcceleration | undefined;

  constructor(private readonly options: AgentOptions) {
    this.maglev = new MaglevSync(options.config, options.logger);
    this.status = {
      ready: false,
      node: options.nodeName,
      source: options.source.description,
      programmed: null,
      seen: null,
      skipped: { current: 0, total: 0 },
      entries: {},
      attachments: [],
      lastError: null,
      conntrackGC: { passes: 0, deleted: 0, lastPass: null },
    };
  }

  snapshotStatus(): AgentStatus {
    return {
      ...this.status,
      skipped: { ...this.status.skipped },
      conntrackGC: { ...this.status.conntrackGC },
    };
  }

  /** Runs until stop() (resolves) or until the source fails (rejects). */
  async run(): Promise<void> {
    const { config, logger, source } = this.options;
    preflight(config);
    this.health = await startHealthServer(config.health.host, config.health.port, () =>
      this.snapshotStatus(),
    );
    logger.info({ health: this.health.address, source: this.status.source }, 'agent started');
    // The source is pumped on its own, so a reconcile waiting to retry still sees new snapshots
    // (only the latest matters: sources are level-triggered).
    const scan = setInterval(() => {
      if (this.status.ready) this.syncPodInterfaces();
    }, POD_INTERFACE_SCAN_MS);
    scan.unref();
    // Conntrack GC: each pass schedules the next, sooner when it found much dead (ct-gc.ts).
    let gcIntervalMs = GC_MAX_INTERVAL_MS;
    let gc: NodeJS.Timeout | undefined;
    let gcEnded = false;
    const scheduleGc = (): void => {
      if (gcEnded) return;
      gc = setTimeout(() => {
        if (!this.status.ready || !config.perPacketLB.enabled) {
          scheduleGc();
          return;
        }
        void this.collectConntrack().then((pass) => {
          if (pass) gcIntervalMs = nextGcIntervalMs(gcIntervalMs, pass.deleted, pass.capacity);
          scheduleGc();
        });
      }, gcIntervalMs);
      gc.unref();
    };
    scheduleGc();
    let sourceDone = false;
    let sourceError: unknown;
    const pump = (async () => {
      try {
        for await (const snapshot of source.snapshots()) {
          this.latest = snapshot;
          this.kick();
        }
      } catch (error) {
        sourceError = error;
      } finally {
        sourceDone = true;
        this.kick();
      }
    })();
    try {
      let done: SourceSnapshot | undefined;
      let delay = RETRY_MIN_MS;
      while (!this.stopping) {
        const snapshot = this.latest;
        if (snapshot && snapshot !== done) {
          try {
            this.reconcile(snapshot);
            done = snapshot;
            delay = RETRY_MIN_MS;
            this.status.lastError = null;
          } catch (error) {
            this.status.lastError = (error as Error).message;
            logger.error(
              { err: error, generation: snapshot.generation, retryInMs: delay },
              'reconcile failed; the maps are read back and the reconcile retried',
            );
            // The maps are the truth: every prefix of a diff is consistent, start from there.
            if (this.datapath) this.reconciler?.reset(readProgrammed(this.datapath.maps));
            await this.sleep(delay);
            delay = Math.min(delay * 2, RETRY_MAX_MS);
          }
          continue;
        }
        if (sourceDone) break;
        await this.sleep();
      }
    } finally {
      clearInterval(scan);
      gcEnded = true;
      clearTimeout(gc);
      await source.close();
      await pump;
      await this.shutdown();
    }
    if (sourceError !== undefined && !this.stopping) {
      throw sourceError instanceof Error
        ? sourceError
        : new Error(`source failed: ${JSON.stringify(sourceError)}`);
    }
  }

  /** Stops cleanly: nothing is detached or unpinned, traffic keeps flowing. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.kick();
    await this.options.source.close();
  }

  private kick(): void {
    const wake = this.wakeup;
    this.wakeup = undefined;
    wake?.();
  }

  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.kick(), ms);
      this.wakeup = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async shutdown(): Promise<void> {
    this.acceleration?.close();
    this.acceleration = undefined;
    this.datapath?.close();
    this.datapath = undefined;
    await this.health?.close();
    this.health = undefined;
    this.options.logger.info({}, 'agent stopped; the datapath stays attached and pinned');
  }

  private ensureDatapath(nodeIP: string): Reconciler {
    const { config, logger } = this.options;
    if (this.datapath && this.reconciler) {
      if (nodeIP !== this.nodeIP && config.perPacketLB.enabled) {
        logger.error(
          { loaded: this.nodeIP, now: nodeIP },
          "the node's address changed: the TC program keeps the one it was loaded with until the agent restarts",
        );
        this.nodeIP = nodeIP;
      }
      return this.reconciler;
    }
    if (config.perPacketLB.enabled && nodeIP === '') {
      throw new AgentError(
        'AGENT_SOURCE',
        `the source has no Node ${this.options.nodeName} with an InternalIP: the TC program needs the node's address`,
      );
    }
    this.nodeIP = nodeIP;
    this.datapath = (this.options.openDatapath ?? openDatapath)(config, nodeIP);
    this.status.attachments = this.datapath.attachments;
    const programmed = readProgrammed(this.datapath.maps);
    this.reconciler = new Reconciler(this.options.nodeName, this.datapath.maps, programmed);
    logger.info(
      {
        pinRoot: config.pinRoot,
        adopted: this.datapath.adoptedPins.length > 0,
        entries: programmedSize(programmed),
        attachments: this.datapath.attachments,
      },
      this.datapath.adoptedPins.length > 0
        ? 'datapath adopted from the pins'
        : 'datapath loaded and attached',
    );
    for (const w of this.datapath.warnings ?? []) logger.warn(w.fields, w.msg);
    return this.reconciler;
  }

  private reconcile(snapshot: SourceSnapshot): void {
    const { nodeName, logger } = this.options;
    this.status.seen = { generation: snapshot.generation, digest: snapshot.digest };
    this.logSkipped(snapshot.skipped);
    if (!snapshot.state.nodes.has(nodeName)) {
      logger.warn({ node: nodeName }, 'the source has no Node object for this node: no NodePorts');
    }
    const reconciler = this.ensureDatapath(snapshot.state.nodes.get(nodeName)?.ip ?? '');
    this.syncPodInterfaces();
    // A failure throws before the programmed state moves on; run() then reads the maps back.
    const outcome = reconciler.reconcile(snapshot.state, snapshot.changes);
    for (const c of outcome.conflicts) {
      logger.warn(c, 'two service ports claim one frontend; the first keeps it');
    }
    // Maglev tables of external frontends, from what is now programmed (src/agent/maglev.ts).
    this.maglev.sync(this.datapath, reconciler.state);
    const ops = countOps(outcome.ops);
    this.status.programmed = {
      generation: snapshot.generation,
      digest: snapshot.digest,
      ops,
      at: new Date().toISOString(),
    };
    this.status.entries = programmedSize(reconciler.state);
    this.acceleration ??= SocketAcceleration.start(this.options.config, logger);
    this.acceleration.reconcile(snapshot.state, nodeName);
    this.status.ready = true;
    logger.info(
      {
        generation: snapshot.generation,
        digest: snapshot.digest.slice(0, 12),
        mode: outcome.mode,
        services: outcome.services,
        ops,
        operations: outcome.ops.length,
        affinityPurged: outcome.purged,
        planMs: outcome.planMs,
        applyMs: outcome.applyMs,
        entries: this.status.entries,
      },
      outcome.ops.length === 0 ? 'reconciled: nothing to change' : 'reconciled',
    );
  }

  /**
   * One garbage-collection pass over ct4, with the map's capacity (for the next interval);
   * undefined when it failed (logged; retried next interval).
   */
  private async collectConntrack(): Promise<(CtGcPass & { capacity: number }) | undefined> {
    const { config, logger } = this.options;
    let map;
    try {
      map = openPinnedMap(join(config.pinRoot, 'ct4'), lbTcSpec.maps.ct4);
    } catch (error) {
      logger.warn({ err: error }, 'conntrack garbage collection: cannot open ct4');
      return undefined;
    }
    try {
      const pass = await collectExpiredFlows(map);
      const stats = this.status.conntrackGC;
      this.status.conntrackGC = {
        passes: stats.passes + 1,
        deleted: stats.deleted + pass.deleted,
        lastPass: pass,
      };
      const log = pass.deleted > 0 ? logger.info.bind(logger) : logger.debug.bind(logger);
      log(
        { ...pass, deletedTotal: this.status.conntrackGC.deleted },
        'conntrack garbage collected',
      );
      return { ...pass, capacity: map.maxEntries };
    } catch (error) {
      logger.warn({ err: error }, 'conntrack garbage collection failed');
      return undefined;
    } finally {
      map.close();
    }
  }

  /**
   * Puts lb_tc_ingress on pod interfaces that appeared since the last scan. A failure (a veth
   * removed between listing and attaching) is logged once and retried on the next scan; it
   * never fails the reconcile.
   */
  private syncPodInterfaces(): void {
    const sync = this.datapath?.syncPodInterfaces;
    if (!sync || !this.datapath) return;
    let result;
    try {
      result = sync();
    } catch (error) {
      this.options.logger.error({ err: error }, 'listing the pod interfaces failed');
      return;
    }
    const { logger } = this.options;
    for (const a of result.added) logger.info(a, 'pod interface attached');
    if (result.gone.length > 0) logger.info({ gone: result.gone }, 'pod interfaces gone');
    const failures = new Set(result.failed.map((f) => `${f.ifname}: ${f.error}`));
    for (const f of result.failed) {
      if (!this.podFailures.has(`${f.ifname}: ${f.error}`))
        logger.warn(f, 'attaching to a pod interface failed; retried on the next scan');
    }
    this.podFailures = failures;
    this.podAttachments = result.attachments;
    this.status.attachments = [...this.datapath.attachments, ...this.podAttachments];
  }

  /** One log line per bad object (again only when its reason changes), and a counter. */
  private logSkipped(skipped: readonly SkippedObject[]): void {
    const now = new Set<string>();
    for (const s of skipped) {
      const id = `${s.where} ${s.kind} ${s.name}: ${s.reason}`;
      now.add(id);
      if (this.loggedSkips.has(id)) continue;
      this.skippedTotal += 1;
      this.options.logger.warn(
        { where: s.where, kind: s.kind, name: s.name, reason: s.reason },
        `skipped ${s.kind || 'object'} ${s.name || s.where}: ${s.reason}`,
      );
    }
    this.loggedSkips = now;
    this.status.skipped = { current: skipped.length, total: this.skippedTotal };
  }
}
