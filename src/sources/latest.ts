/**
 * A one-slot channel for level-triggered sources: put() replaces whatever the consumer has not
 * taken yet, so a slow consumer skips intermediate values instead of queueing them. `coalesce`
 * (optional) combines the value replaced with its replacement (e.g. to keep both change sets).
 */
export class LatestChannel<T> implements AsyncIterableIterator<T, undefined> {
  constructor(private readonly coalesce?: (replaced: T, next: T) => T) {}

  private pending: { value: T } | undefined;
  private failure: { error: unknown } | undefined;
  private closed = false;
  private waiter: ((result: IteratorResult<T, undefined>) => void) | undefined;
  private rejecter: ((error: unknown) => void) | undefined;

  put(value: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.clearWaiter();
      resolve({ value, done: false });
    } else {
      const replaced = this.pending;
      this.pending = {
        value: replaced && this.coalesce ? this.coalesce(replaced.value, value) : value,
      };
    }
  }

  /** Ends the iteration with an error (after any pending value has been taken). */
  fail(error: unknown): void {
    if (this.closed) return;
    if (this.rejecter) {
      const reject = this.rejecter;
      this.clearWaiter();
      this.closed = true;
      reject(error);
    } else {
      this.failure = { error };
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    const resolve = this.waiter;
    this.clearWaiter();
    resolve?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.pending) {
      const { value } = this.pending;
      this.pending = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      this.closed = true;
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.rejecter = reject;
    });
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T, undefined> {
    return this;
  }

  private clearWaiter(): void {
    this.waiter = undefined;
    this.rejecter = undefined;
  }
}
