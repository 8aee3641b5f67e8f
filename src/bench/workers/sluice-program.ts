/**
 * Child process of the control-plane scenario's sluice-ts mode: runs runSluice (the agent's
 * full pass, then one-endpoint changes) in a Node process of its own and prints its samples as
 * one JSON line. Argv: SERVICES PIN_BASE.
 *
 * Why a process of its own: the agent runs as one. In the bench process the reconcile would
 * share a heap with the kube-proxy modes' renders (hundreds of MB of rule text at 10k services)
 * and pay for collecting their garbage, which measured up to twice the agent's own time.
 */
import { runSluice } from '../scenarios/control-plane.js';

const [servicesArg, pinBase] = process.argv.slice(2);
const services = Number(servicesArg);
if (!Number.isSafeInteger(services) || services <= 0 || !pinBase) {
  process.stderr.write('usage: sluice-program.js SERVICES PIN_BASE\n');
  process.exit(2);
}
const samples = await runSluice(pinBase, services, new AbortController().signal);
process.stdout.write(`${JSON.stringify(samples)}\n`);
