import { SluiceError } from '../errors.js';

/**
 * A problem the user can fix (unknown scenario, helper not built, CPU out of range, a baseline
 * tool that failed): the CLI prints the message alone, without a stack trace.
 */
export class BenchError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super('BENCH', message, options);
    this.name = 'BenchError';
  }
}
