/**
 * The manifests-directory source: the Nodes, Services and EndpointSlices found in a directory
 * of YAML/JSON manifests (read like `kubectl apply -R`), watched with fs.watch and brought up to
 * date after a short debounce. It is what the lab and standalone users run the agent with.
 *
 * Unlike `sluice lab apply`, nothing is allocated or computed here: kube-proxy sees objects the
 * API server already completed, so Services must carry their ClusterIP, NodePorts and
 * load-balancer ingress (status.loadBalancer.ingress[0].ip, else spec.loadBalancerIP), and
 * EndpointSlices are taken as given. The model's controllers do not run (manifest-state.ts).
 *
 * Incremental: the events name the files that changed, and only those are read and parsed
 * again; each file's objects are kept apart, so a change replaces only the objects of the
 * files that changed, and the snapshot names the objects that changed (manifest-index.ts).
 * Every 30 s (fs.watch can miss events) each file's stat signature is compared, and a file
 * whose signature moved is read again.
 *
 * Robustness rules, because the directory is edited while the agent runs:
 * - An invalid object (bad port, unknown protocol, NodePort out of range or taken by an earlier
 *   object, an IPv6 address, a Service without its allocations) is skipped and reported; the
 *   others are used. Files are read in code-point order, so "earlier" is well defined.
 * - A file with a YAML/JSON syntax error (or that cannot be read) keeps the objects of its last
 *   good read: a half-written file must not withdraw every service it declares. Its problems
 *   are still reported. A file removed withdraws its objects.
 * - Kinds kube-proxy does not watch (Deployments, NetworkPolicies, ...) are ignored; Pods,
 *   Namespaces, TrafficOptimizations and CiliumNetworkPolicies are read for socket acceleration.
 */
import { existsSync, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import type { ManifestDoc, ManifestProblem } from '../model/index.js';
import { listManifestFiles, parseManifests } from '../model/index.js';
import { SourceError } from './errors.js';
import { LatestChannel } from './latest.js';
import type { ManifestReader } from './manifest-index.js';
import { ManifestIndex } from './manifest-index.js';
import type { ManifestFile, StateOptions } from './manifest-state.js';
import type { Source, SourceSnapshot } from './source.js';
import { coalesceSnapshots } from './source.js';

export type { ManifestFile, NodePortRange, StateOptions } from './manifest-state.js';
export {
  DEFAULT_NODE_PORT_RANGE,
  WATCHED_KINDS,
  agentAddressing,
  clusterStateFromChecked,
  clusterStateFromDocs,
  manifestsDigest,
  validationContext,
  watchedDocs,
} from './manifest-state.js';
export type { ManifestReader } from './manifest-index.js';

/** The subset of a pino logger a source reports through. */
export interface SourceLogger {
  warn(object: object, message: string): void;
  debug(object: object, message: string): void;
}

interface FileRead {
  content: string;
  docs: ManifestDoc[];
}

/**
 * One whole read of the directory (the source itself reads incrementally: manifest-index.ts).
 * `lastGood` carries each file's last parse without syntax errors, by name relative to the
 * directory (the name problems and digests use).
 */
export function readManifestsDir(
  dir: string,
  lastGood: Map<string, FileRead>,
): { docs: ManifestDoc[]; problems: ManifestProblem[]; files: ManifestFile[] } {
  const { files, problems } = listManifestFiles([dir]);
  const docs: ManifestDoc[] = [];
  const read: ManifestFile[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (error) {
      // Removed between the listing and the read: the next event re-reads.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const name = relative(dir, file);
    seen.add(name);
    read.push({ name, content });
    const parsed = parseManifests(content, name);
    if (parsed.problems.length === 0) {
      lastGood.set(name, { content, docs: parsed.docs });
      // Loops, not push(...): spreading 200k documents into arguments overflows the stack.
      for (const doc of parsed.docs) docs.push(doc);
    } else {
      for (const problem of parsed.problems) problems.push(problem);
      for (const doc of lastGood.get(name)?.docs ?? []) docs.push(doc);
    }
  }
  for (const name of [...lastGood.keys()]) if (!seen.has(name)) lastGood.delete(name);
  return { docs, problems, files: read };
}

export interface ManifestsSourceOptions extends StateOptions {
  /**
   * Quiet time after the last change before the changed files are read. Default 20 ms: enough
   * to take a burst of writes (a `cp -r`, an editor's save) as one read; a file caught half
   * written fails to parse, keeps its last good objects and is read again on its next event.
   */
  debounceMs?: number;
  /** Compare every file's stat signature this often (fs.watch can miss events). Default 30 s; 0: never. */
  resyncMs?: number;
  logger?: SourceLogger;
  /** The file system (tests count the reads). Default: node:fs. */
  reader?: ManifestReader;
}

export class ManifestsSource implements Source {
  readonly description: string;
  private readonly channel = new LatestChannel<SourceSnapshot>(coalesceSnapshots);
  private readonly index: ManifestIndex;
  /** Paths the events named since the last refresh; `all`: an event without a name, a resync. */
  private readonly changed = new Set<string>();
  private all = true;
  /** One inotify watch per directory: Node 20's recursive fs.watch on Linux misses renames. */
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private generation = 0;
  private started = false;

  constructor(
    readonly dir: string,
    private readonly options: ManifestsSourceOptions = {},
  ) {
    this.description = `manifests:${dir}`;
    this.index = new ManifestIndex(dir, options);
  }

  snapshots(): AsyncIterableIterator<SourceSnapshot, undefined> {
    if (!this.started) this.start();
    return this.channel;
  }

  close(): Promise<void> {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.debounce);
    clearInterval(this.resync);
    this.channel.close();
    return Promise.resolve();
  }

  private start(): void {
    this.started = true;
    if (!existsSync(this.dir) || !statSync(this.dir).isDirectory()) {
      this.channel.fail(new SourceError(`manifests directory ${this.dir} does not exist`));
      return;
    }
    // Watch before the first read, so a change made during the read is not missed.
    this.watchDirectories();
    const resyncMs = this.options.resyncMs ?? 30_000;
    if (resyncMs > 0) this.resync = setInterval(() => this.schedule(true), resyncMs).unref();
    this.read();
  }

  /** Watches the directory and every subdirectory, dropping watches of removed ones. */
  private watchDirectories(): void {
    const dirs = new Set<string>();
    const walk = (dir: string): void => {
      dirs.add(dir);
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // removed meanwhile
      }
      for (const e of entries)
        if (e.isDirectory() && !e.name.startsWith('.')) walk(join(dir, e.name));
    };
    walk(this.dir);
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, (_event, name) => {
          if (name) this.changed.add(join(dir, name.toString()));
          this.schedule(!name);
        });
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.schedule(true); // the directory went away: re-read, re-watch
        });
        this.watchers.set(dir, w);
      } catch (error) {
        if (dir === this.dir) {
          this.channel.fail(new SourceError(`watching ${dir}: ${(error as Error).message}`));
        }
      }
    }
  }

  private schedule(all = false): void {
    if (all) this.all = true;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.read(), this.options.debounceMs ?? 20);
  }

  private read(): void {
    // Taken before the refresh: events during it are for the next one.
    const changed = new Set(this.changed);
    const all = this.all;
    this.changed.clear();
    this.all = false;
    let refresh: ReturnType<ManifestIndex['refresh']>;
    try {
      this.watchDirectories();
      refresh = this.index.refresh(changed, all);
    } catch (error) {
      for (const path of changed) this.changed.add(path);
      this.all ||= all;
      this.options.logger?.warn(
        { err: error, source: this.description },
        'cannot read the manifests directory; retrying',
      );
      this.schedule();
      return;
    }
    if (!refresh) return;
    this.generation += 1;
    this.options.logger?.debug(
      {
        generation: this.generation,
        digest: refresh.digest,
        files: refresh.files,
        read: refresh.read.length <= 10 ? refresh.read : refresh.read.length,
      },
      'manifests read',
    );
    const snapshot: SourceSnapshot = {
      generation: this.generation,
      digest: refresh.digest,
      state: refresh.state,
      skipped: refresh.skipped,
    };
    // Named from the changed files' objects, so the agent re-plans only what changed.
    if (refresh.changes) snapshot.changes = refresh.changes;
    this.channel.put(snapshot);
  }
}
