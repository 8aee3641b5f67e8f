/** Field paths in the form users read them: spec.ports[0].port, metadata.labels["a.b/c"]. */

/** `.app` for identifier-like keys, `["app.kubernetes.io/name"]` otherwise. */
export function keyPath(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Segments (keys and indices) to a dotted path without a leading dot. */
export function joinPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : keyPath(s);
  return out.startsWith('.') ? out.slice(1) : out;
}

/** An ajv instancePath (JSON pointer, /spec/ports/0/port) to spec.ports[0].port. */
export function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  const segments = pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
  return joinPath(segments);
}

/** prefix + child, where child is a key or an index. */
export function childPath(prefix: string, child: string | number): string {
  if (typeof child === 'number') return `${prefix}[${child}]`;
  return prefix === '' ? joinPath([child]) : `${prefix}${keyPath(child)}`;
}
