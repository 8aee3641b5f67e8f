/**
 * The manifests source's memory of its directory, file by file, so a change costs what the
 * changed files cost: only they are read, parsed and checked again, and the change set is
 * worked out from their objects (plus the few objects elsewhere whose fate they decide).
 *
 * Per file it keeps the content, the last good parse and each document's own checks (schema,
 * fields: checkEachManifest, which depend on the document alone). What depends on every
 * document (a duplicate name, a NodePort or ClusterIP taken by an earlier object: crossCheck)
 * is checked again over the kept, already-checked documents on each refresh, and the state is
 * assembled from them: a linear pass without reading, parsing or schema checks.
 *
 * A refresh is told which paths changed (fs.watch names them), or to look at everything: then a
 * file is read again only when its stat signature (inode, size, mtime) moved. A file that
 * appeared is read; one that went drops its objects; one that cannot be parsed (or read) keeps
 * the objects of its last good version and is reported.
 */
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import type { ClusterState, ManifestProblem, ObjectKey } from '../model/index.js';
import { listManifestFiles, objectKey, parseManifests } from '../model/index.js';
import type { ValidDoc } from '../model/validate.js';
import { checkEachManifest, crossCheck } from '../model/validate.js';
import type { ManifestFile, StateOptions } from './manifest-state.js';
import {
  clusterStateFromChecked,
  manifestsDigest,
  validationContext,
  watchedDocs,
} from './manifest-state.js';
import type { SkippedObject, SourceChanges } from './source.js';

/** The file system as the index sees it; tests count the reads. */
export interface ManifestReader {
  /** The manifest files under dir (absolute), in read order, and the paths it could not list. */
  list(dir: string): { files: string[]; problems: ManifestProblem[] };
  /** A file's text; throws (ENOENT when it is gone). */
  read(path: string): string;
  /** What moves when the file is rewritten, without reading it; undefined when it is gone. */
  signature(path: string): string | undefined;
}

export const fsManifestReader: ManifestReader = {
  list: (dir) => listManifestFiles([dir]),
  read: (path) => readFileSync(path, 'utf8'),
  signature: (path) => {
    try {
      const s = statSync(path, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch {
      return undefined;
    }
  },
};

interface FileEntry {
  /** The text last read (the digest covers it, good or not). */
  content: string;
  signature: string | undefined;
  /** Documents of the last good parse, the watched kinds only, and their own checks. */
  valid: ValidDoc[];
  problems: ManifestProblem[];
  /** Why the text last read is not used (syntax error, unreadable); [] when it is. */
  unusable: ManifestProblem[];
  /** The last read failed: `content` is still the one before. */
  readFailed: boolean;
  /** Whether a good parse was ever kept (the message says the last good version stands). */
  hasGood: boolean;
}

export interface IndexRefresh {
  digest: string;
  state: ClusterState;
  skipped: SkippedObject[];
  /** Absent on the first refresh (everything is new). */
  changes?: SourceChanges;
  /** Relative names of the files read this time (for logs and tests). */
  read: string[];
  files: number;
}

export interface ManifestIndexOptions extends StateOptions {
  reader?: ManifestReader;
}

export class ManifestIndex {
  private readonly files = new Map<string, FileEntry>();
  /** Relative names in read order (code points, depth first). */
  private order: string[] = [];
  private state: ClusterState | undefined;
  private skippedWheres = new Set<string>();
  private readonly reader: ManifestReader;

  constructor(
    readonly dir: string,
    private readonly options: ManifestIndexOptions = {},
  ) {
    this.reader = options.reader ?? fsManifestReader;
  }

  /**
   * Brings the index up to date. `changed`: absolute paths named by change events (read again
   * whatever their signature); `all`: compare every file's signature too (a resync, or an event
   * without a name). Undefined when nothing changed. Throws when the directory cannot be listed.
   */
  refresh(changed: ReadonlySet<string>, all: boolean): IndexRefresh | undefined {
    const listing = this.reader.list(this.dir);
    const listed = listing.files.map((path) => ({ path, name: relative(this.dir, path) }));
    const first = this.state === undefined;
    const read: string[] = [];
    // Objects (by kind) of the old and new versions of every file read or removed.
    const touched: ValidDoc[] = [];
    let dirty = first;

    const present = new Set<string>();
    for (const { path, name } of listed) {
      const entry = this.files.get(name);
      let signature: string | undefined;
      if (entry && !changed.has(path)) {
        if (!all) {
          present.add(name);
          continue;
        }
        signature = this.reader.signature(path);
        if (signature === entry.signature) {
          present.add(name);
          continue;
        }
      }
      // Taken before the read: a write during the read moves it again, and is read next time.
      signature ??= this.reader.signature(path);
      let content: string;
      let readProblem: ManifestProblem | undefined;
      try {
        content = this.reader.read(path);
      } catch (error) {
        // Removed between the listing and the read: gone (its removal event re-reads anyway).
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        content = entry?.content ?? '';
        readProblem = {
          file: name,
          index: -1,
          kind: '',
          namespace: '',
          name: '',
          path: '',
          message: `cannot read: ${(error as Error).message}`,
        };
      }
      present.add(name);
      read.push(name);
      if (entry && !readProblem && !entry.readFailed && entry.content === content) {
        entry.signature = signature; // same text, same parse: nothing moves
        continue;
      }
      dirty = true;
      const parsed = readProblem
        ? { docs: [], problems: [readProblem] }
        : parseManifests(content, name);
      if (parsed.problems.length > 0) {
        // Half-written or broken: the objects of the last good version stay.
        const kept: FileEntry = entry ?? {
          content,
          signature,
          valid: [],
          problems: [],
          unusable: [],
          readFailed: false,
          hasGood: false,
        };
        this.files.set(name, {
          ...kept,
          content,
          signature,
          unusable: parsed.problems,
          readFailed: readProblem !== undefined,
        });
        continue;
      }
      const { valid, problems } = checkEachManifest(
        watchedDocs(parsed.docs),
        validationContext(this.options),
      );
      if (entry) for (const d of entry.valid) touched.push(d);
      for (const d of valid) touched.push(d);
      this.files.set(name, {
        content,
        signature,
        valid,
        problems,
        unusable: [],
        readFailed: false,
        hasGood: true,
      });
    }
    for (const [name, entry] of this.files) {
      if (present.has(name)) continue;
      dirty = true;
      for (const d of entry.valid) touched.push(d);
      this.files.delete(name);
    }
    this.order = listed.map((f) => f.name).filter((n) => this.files.has(n));
    if (!dirty) return undefined;

    const { state, skipped, valid } = this.assemble();
    for (const p of listing.problems) skipped.push(problemAsSkipped(p, false));
    const skippedWheres = new Set(skipped.map((s) => s.where));
    const refresh: IndexRefresh = {
      digest: this.digest(),
      state,
      skipped,
      read,
      files: this.order.length,
    };
    const previous = this.state;
    if (previous) {
      // Objects elsewhere whose fate moved: a NodePort freed or taken, a duplicate name gone.
      const flipped = new Set<string>();
      for (const w of skippedWheres) if (!this.skippedWheres.has(w)) flipped.add(w);
      for (const w of this.skippedWheres) if (!skippedWheres.has(w)) flipped.add(w);
      if (flipped.size > 0) {
        for (const d of valid) if (flipped.has(whereOf(d))) touched.push(d);
      }
      refresh.changes = changesAmong(touched, previous, state);
    }
    this.state = state;
    this.skippedWheres = skippedWheres;
    return refresh;
  }

  /** The state from every kept document: the checks across documents, then assembly. */
  private assemble(): { state: ClusterState; skipped: SkippedObject[]; valid: ValidDoc[] } {
    const valid: ValidDoc[] = [];
    const problems: ManifestProblem[] = [];
    // Loops, not push(...): spreading 200k documents into arguments overflows the stack.
    for (const name of this.order) {
      const entry = this.files.get(name);
      if (!entry) continue;
      for (const d of entry.valid) valid.push(d);
      for (const p of entry.problems) problems.push(p);
    }
    for (const p of crossCheck(valid, validationContext(this.options))) problems.push(p);
    const { state, skipped } = clusterStateFromChecked(valid, problems);
    for (const name of this.order) {
      const entry = this.files.get(name);
      for (const p of entry?.unusable ?? []) skipped.push(problemAsSkipped(p, entry?.hasGood));
    }
    return { state, skipped, valid };
  }

  private digest(): string {
    const files: ManifestFile[] = [];
    for (const name of this.order) {
      const entry = this.files.get(name);
      if (entry) files.push({ name, content: entry.content });
    }
    return manifestsDigest(files);
  }
}

function whereOf(d: ValidDoc): string {
  return d.source.index < 0 ? d.source.file : `${d.source.file}#${d.source.index}`;
}

function problemAsSkipped(p: ManifestProblem, lastGoodKept: boolean | undefined): SkippedObject {
  return {
    where: p.index < 0 ? p.file : `${p.file}#${p.index}`,
    kind: p.kind,
    name: p.name,
    reason: `${p.message}${lastGoodKept ? ' (the last good version of the file is kept)' : ''}`,
  };
}

/** Which of the objects the documents name differ between the two states. */
function changesAmong(
  docs: readonly ValidDoc[],
  before: ClusterState,
  after: ClusterState,
): SourceChanges {
  const changes = {
    services: new Set<ObjectKey>(),
    endpointSlices: new Set<ObjectKey>(),
    nodes: new Set<string>(),
  };
  const differs = <T>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>, key: string) => {
    const x = a.get(key);
    const y = b.get(key);
    return x === undefined || y === undefined ? x !== y : JSON.stringify(x) !== JSON.stringify(y);
  };
  for (const d of docs) {
    if (d.kind === 'Node') {
      if (differs(before.nodes, after.nodes, d.name)) changes.nodes.add(d.name);
    } else if (d.kind === 'Service') {
      const key = objectKey(d.namespace, d.name);
      if (differs(before.services, after.services, key)) changes.services.add(key);
    } else if (d.kind === 'EndpointSlice') {
      const key = objectKey(d.namespace, d.name);
      if (differs(before.endpointSlices, after.endpointSlices, key))
        changes.endpointSlices.add(key);
    }
  }
  return changes;
}
