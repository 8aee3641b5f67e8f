/**
 * Deterministic names and ids. Kubernetes picks random suffixes; the lab derives them from
 * the object's content instead, so applying the same manifests twice gives the same names.
 */
import { createHash } from 'node:crypto';

/** Kubernetes' rand.SafeEncodeString alphabet: no vowels, no 0/1/3 (no accidental words). */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const SUFFIX_SPACE = SAFE_ALPHABET.length ** 5; // 14348907

/** 32-bit FNV-1a over the UTF-8 bytes of text (the hash Kubernetes uses for pod-template-hash). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** value as `length` characters of the safe alphabet (least significant digit first). */
export function safeEncode(value: number, length = 5): string {
  let v = Math.floor(Math.abs(value));
  let out = '';
  for (let i = 0; i < length; i++) {
    out += SAFE_ALPHABET.charAt(v % SAFE_ALPHABET.length);
    v = Math.floor(v / SAFE_ALPHABET.length);
  }
  return out;
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Five safe characters derived from the given parts. */
export function shortHash(...parts: unknown[]): string {
  return safeEncode(fnv1a32(stableJson(parts)) % SUFFIX_SPACE);
}

/**
 * The suffix of replica `index` of a template whose hash is templateHash: five safe characters,
 * distinct for every index below 27^5 (an affine bijection of the index, so it looks random
 * but never collides).
 */
export function replicaSuffix(templateHash: string, index: number): string {
  const offset = fnv1a32(templateHash) % SUFFIX_SPACE;
  // 7777777 is coprime with 27^5 (not a multiple of 3), so index -> value is a bijection.
  const value = ((((index % SUFFIX_SPACE) * 7777777) % SUFFIX_SPACE) + offset) % SUFFIX_SPACE;
  return safeEncode(value);
}

/** A UUID-shaped id derived from the parts (version 5-style: sha256, variant bits set). */
export function derivedUid(...parts: unknown[]): string {
  const hex = createHash('sha256').update(stableJson(parts)).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
