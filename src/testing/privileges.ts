/**
 * Test support for the datapath and lab tiers: they need root and the real kernel. Without
 * root they fail loudly (never skip), so a missing privilege cannot pass as a green run.
 */
import { requireBpfEnvironment } from '../bpf/environment.js';

let checked = false;

export function requireKernel(): void {
  if (checked) return;
  requireBpfEnvironment();
  checked = true;
}
