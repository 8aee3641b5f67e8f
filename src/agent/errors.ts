/**
 * Errors of the agent the operator acts on. Codes (docs/agent.md):
 * - AGENT_CONFIG: the configuration is malformed or inconsistent; nothing was touched.
 * - AGENT_SOURCE: the source cannot be used (not implemented, not readable).
 * - AGENT_DATAPATH: loading, adopting or attaching the datapath failed (the message names the
 *   object and the errno); what this start created is removed, what it adopted is left.
 */
import { SluiceError } from '../errors.js';

export type AgentErrorCode = 'AGENT_CONFIG' | 'AGENT_SOURCE' | 'AGENT_DATAPATH';

export class AgentError extends SluiceError {
  declare readonly code: AgentErrorCode;
  constructor(code: AgentErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'AgentError';
  }
}
