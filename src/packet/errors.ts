// Errors thrown while decoding, carrying the layer and field so tests can match on them.

export class PacketParseError extends Error {
  readonly layer: string;
  readonly field: string;

  constructor(layer: string, field: string, detail: string) {
    super(`${layer}.${field}: ${detail}`);
    this.name = 'PacketParseError';
    this.layer = layer;
    this.field = field;
  }
}

/** Throws unless `n` bytes starting at `offset` lie before `end`. */
export function need(end: number, offset: number, n: number, layer: string, field: string): void {
  if (offset + n > end) {
    const have = Math.max(0, end - offset);
    throw new PacketParseError(
      layer,
      field,
      `truncated: need ${n} bytes at offset ${offset}, only ${have} available`,
    );
  }
}

/** Rejects values that would not fit a `bits`-wide unsigned field, naming the field. */
export function checkUint(field: string, value: number, bits: number): number {
  const max = 2 ** bits - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${field}: ${value} is not an integer in 0..${max}`);
  }
  return value;
}
