/**
 * `sluice doctor [--json]`: checks that this machine has every capability sluice needs and says
 * how to fix what is missing. Exits 1 when a required capability is missing.
 */
import type { Command } from 'commander';
import { runDoctor } from '../doctor/checks.js';
import { exitCode, formatJson, formatText } from '../doctor/report.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check that this machine has what sluice needs (kernel features, tools, privileges)',
    )
    .option('--json', 'print a JSON array of {name, status, required, detail, fix}')
    .action(async (options: { json?: boolean }) => {
      const results = await runDoctor();
      process.stdout.write(options.json ? formatJson(results) : formatText(results));
      process.exitCode = exitCode(results);
    });
}
