/** Errors of the sources: a source that cannot be read at all (not a bad object in it). */
import { SluiceError } from '../errors.js';

export class SourceError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super('SOURCE', message, options);
    this.name = 'SourceError';
  }
}
