/**
 * Reading manifests: files or directories, multi-document YAML and JSON. This is the model's
 * only module that touches the file system; everything after it works on ManifestDoc values.
 *
 * - A directory is read recursively; entries are visited in code-point order of their names,
 *   depth first (like `kubectl apply -R`), and only *.yaml, *.yml and *.json files are taken.
 *   Entries whose name starts with '.' are skipped (.git, editor files). A file named explicitly
 *   is read whatever its extension (as JSON if it ends in .json, else as YAML).
 * - YAML is read as YAML 1.1, as Kubernetes reads it (`yes`/`no` are booleans, `0755` is octal),
 *   except that timestamps and base-60 numbers stay strings. Duplicate keys are errors.
 * - Empty documents (`---` with nothing, or only comments) are skipped. A `kind: List` (or
 *   `*List`) object with `items` stands for its items.
 * - `source.index` is the 0-based position of the object in its file after skipping empty
 *   documents and expanding lists, so `web.yaml#2` is the third object in web.yaml.
 * - Problems in all files are collected and thrown together as one ManifestError.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { LineCounter, isMap, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';

import { ManifestError } from './errors.js';
import type { ManifestProblem } from './errors.js';

export interface ManifestSource {
  /** The file as named by the caller (directory entries joined to the directory given). */
  file: string;
  /** 0-based position of the object in the file (empty documents skipped, lists expanded). */
  index: number;
  /** 1-based line where the object starts (YAML only). */
  line?: number;
}

export interface ManifestDoc {
  source: ManifestSource;
  object: unknown;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** The manifest files the paths stand for, in the order they will be read. */
export function listManifestFiles(paths: readonly string[]): {
  files: string[];
  problems: ManifestProblem[];
} {
  const files: string[] = [];
  const problems: ManifestProblem[] = [];
  const walk = (dir: string): void => {
    const names = readdirSync(dir).sort(compareCodePoints);
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() && MANIFEST_EXTENSIONS.some((ext) => name.endsWith(ext))) {
        files.push(path);
      }
    }
  };
  for (const path of paths) {
    try {
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    } catch (err) {
      problems.push(fileProblem(path, `cannot read: ${errorText(err)}`));
    }
  }
  return { files, problems };
}

/** Read every manifest under the given files and directories; throws ManifestError. */
export function loadManifests(paths: readonly string[]): ManifestDoc[] {
  const { files, problems } = listManifestFiles(paths);
  const docs: ManifestDoc[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(fileProblem(file, `cannot read: ${errorText(err)}`));
      continue;
    }
    const parsed = parseManifests(text, file);
    // Loops, not push(...): spreading 200k documents into arguments overflows the stack.
    for (const doc of parsed.docs) docs.push(doc);
    for (const problem of parsed.problems) problems.push(problem);
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return docs;
}

/** Parse manifest text (YAML, or JSON when file ends in .json); throws ManifestError. */
export function parseManifestText(text: string, file: string): ManifestDoc[] {
  const { docs, problems } = parseManifests(text, file);
  if (problems.length > 0) throw new ManifestError(problems);
  return docs;
}

/** Like parseManifestText, but returns the problems instead of throwing. */
export function parseManifests(
  text: string,
  file: string,
): { docs: ManifestDoc[]; problems: ManifestProblem[] } {
  return file.endsWith('.json') ? parseJson(text, file) : parseYaml(text, file);
}

function parseYaml(
  text: string,
  file: string,
): { docs: ManifestDoc[]; problems: ManifestProblem[] } {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, {
    version: '1.1',
    prettyErrors: false,
    lineCounter,
    // Kubernetes reads YAML 1.1 but keeps dates and 1:20-style values as strings.
    customTags: (tags) =>
      tags.filter(
        (t) =>
          typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:timestamp' && t.format !== 'TIME'),
      ),
  });
  const documents: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const docs: ManifestDoc[] = [];
  const problems: ManifestProblem[] = [];
  const lineOf = (offset: number): number => lineCounter.linePos(offset).line;
  let index = 0;
  for (const doc of documents) {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const line = lineOf(err.pos[0]);
        problems.push({
          file,
          index,
          line,
          kind: '',
          namespace: '',
          name: '',
          path: '',
          message: `YAML syntax error at line ${line}, column ${lineCounter.linePos(err.pos[0]).col}: ${err.message}`,
        });
      }
      index++;
      continue;
    }
    const object: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (object === null || object === undefined) continue;
    const contents = doc.contents as YamlNode | null;
    const line = contents?.range ? lineOf(contents.range[0]) : undefined;
    if (isList(object)) {
      const itemNodes = isMap(contents) ? contents.get('items', true) : undefined;
      object.items.forEach((item, i) => {
        const node = isSeq(itemNodes) ? (itemNodes.items[i] as YamlNode | undefined) : undefined;
        const itemLine = node?.range ? lineOf(node.range[0]) : line;
        docs.push({ source: withLine({ file, index: index++ }, itemLine), object: item });
      });
    } else {
      docs.push({ source: withLine({ file, index: index++ }, line), object });
    }
  }
  return { docs, problems };
}

function parseJson(
  text: string,
  file: string,
): { docs: ManifestDoc[]; problems: ManifestProblem[] } {
  let object: unknown;
  try {
    object = JSON.parse(text);
  } catch (err) {
    const message = errorText(err);
    const offset = jsonErrorOffset(text);
    const line = offset === undefined ? undefined : text.slice(0, offset).split('\n').length;
    return {
      docs: [],
      problems: [
        {
          ...fileProblem(file, `JSON syntax error${line ? ` at line ${line}` : ''}: ${message}`),
          index: 0,
          ...(line !== undefined ? { line } : {}),
        },
      ],
    };
  }
  if (isList(object)) {
    return {
      docs: object.items.map((item, index) => ({ source: { file, index }, object: item })),
      problems: [],
    };
  }
  return { docs: [{ source: { file, index: 0 }, object }], problems: [] };
}

function isList(object: unknown): object is { kind: string; items: unknown[] } {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return false;
  const o = object as Record<string, unknown>;
  return typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items);
}

function withLine(source: ManifestSource, line: number | undefined): ManifestSource {
  return line === undefined ? source : { ...source, line };
}

function fileProblem(file: string, message: string): ManifestProblem {
  return { file, index: -1, kind: '', namespace: '', name: '', path: '', message };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Where JSON text stops being valid (Node 20's JSON.parse does not always say): a small
 * recursive-descent scan, only run after JSON.parse failed.
 */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const fail = (): never => {
    throw new JsonStop(i);
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = (): void => {
    i++; // opening quote
    while (i < text.length) {
      const c = text.charAt(i);
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text.charAt(i + 1);
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail();
          i += 6;
        } else if ('"\\/bfnrt'.includes(e) && e !== '') i += 2;
        else fail();
      } else if (c < ' ') fail();
      else i++;
    }
    fail();
  };
  const number = (): void => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail();
    i += m?.[0].length ?? 0;
  };
  const value = (): void => {
    ws();
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      ws();
      if (text.charAt(i) === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text.charAt(i) !== '"') fail();
        string();
        ws();
        if (text.charAt(i) !== ':') fail();
        i++;
        value();
        ws();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) === '}') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text.charAt(i) === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) === ']') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (err) {
    // Anything else (a stack overflow on absurd nesting) just means: no line to report.
    return err instanceof JsonStop ? Math.min(err.offset, text.length) : undefined;
  }
}

class JsonStop extends Error {
  constructor(readonly offset: number) {
    super(`JSON stops being valid at offset ${offset}`);
  }
}
