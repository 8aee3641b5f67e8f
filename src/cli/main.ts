#!/usr/bin/env node
/**
 * The sluice command line. Commands are defined in this folder and call into the layers below
 * (DESIGN.md): nothing else imports cli.
 */
import { Command } from 'commander';
import { SluiceError } from '../errors.js';
import { registerAgent } from './agent.js';
import { registerBench } from './bench.js';
import { registerBpf } from './bpf.js';
import { registerDoctor } from './doctor.js';
import { registerLab } from './lab.js';
import { registerService } from './service.js';
import { registerStatus } from './status.js';
import { registerSock } from './sock.js';
import { version } from './version.js';

// `sluice ... | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command()
  .name('sluice')
  .description('eBPF network acceleration engine for Kubernetes')
  .version(version())
  .showHelpAfterError();

registerDoctor(program);
registerBench(program);
registerLab(program);
registerAgent(program);
registerService(program);
registerBpf(program);
registerStatus(program);
registerSock(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Our own errors are the user's to fix: one clear message, no stack trace.
  if (error instanceof SluiceError) {
    process.stderr.write(`sluice: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
