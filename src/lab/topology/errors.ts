import { SluiceError } from '../../errors.js';

/**
 * A lab operation that failed: the message names what was being done and, for a command, the
 * command line and its stderr. The CLI prints the message alone.
 */
export class LabError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super('LAB', message, options);
    this.name = 'LabError';
  }
}
