/**
 * The base of every error sluice raises for its user to act on. Each carries a stable code
 * (listed with its meaning in docs/errors.md) and a message that names the object and, for a
 * failed call, the call and the errno name. The CLI prints `sluice: <message>` for these, with
 * no stack trace; anything else is a bug and keeps its stack.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
  }
}
