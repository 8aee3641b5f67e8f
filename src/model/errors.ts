/**
 * Errors the model raises. A bad manifest set is one ManifestError listing every problem found
 * (not just the first), each with the file, the object's index in that file, its kind and name,
 * and the field path, so a user can fix them all in one pass.
 */
import { SluiceError } from '../errors.js';

export interface ManifestProblem {
  file: string;
  /** 0-based index of the object within its file; -1 for problems with the file itself. */
  index: number;
  /** 1-based line where the object (or the syntax error) starts, when known. */
  line?: number;
  /** '' when the document has no usable kind. */
  kind: string;
  /** '' for cluster-scoped kinds and for documents without a usable kind. */
  namespace: string;
  name: string;
  /** Dotted field path with [i] indices, e.g. spec.ports[0].port; '' for the whole object. */
  path: string;
  message: string;
}

/** `web.yaml#2 Service default/web: spec.ports[0].port: must be integer` */
export function formatProblem(p: ManifestProblem): string {
  const where = p.index < 0 ? p.file : `${p.file}#${p.index}`;
  const ref = p.name === '' ? '' : p.namespace === '' ? p.name : `${p.namespace}/${p.name}`;
  const what = [p.kind, ref].filter((s) => s !== '').join(' ');
  const head = what === '' ? where : `${where} ${what}`;
  return `${head}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

/** Stable codes for the errors the model raises; docs/errors.md explains each. */
export const MODEL_ERROR_CODES = [
  'MANIFEST_INVALID',
  'OBJECT_NOT_FOUND',
  'FORBIDDEN',
  'STATE_FORMAT',
  'BAD_OPTIONS',
] as const;
export type ModelErrorCode = (typeof MODEL_ERROR_CODES)[number];

export class ModelError extends SluiceError {
  declare readonly code: ModelErrorCode;
  constructor(code: ModelErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'ModelError';
  }
}

/** One or more manifests are unreadable or invalid; nothing was applied. */
export class ManifestError extends ModelError {
  readonly problems: readonly ManifestProblem[];
  constructor(problems: readonly ManifestProblem[]) {
    super('MANIFEST_INVALID', problems.map(formatProblem).join('\n'));
    this.name = 'ManifestError';
    this.problems = problems;
  }
}
