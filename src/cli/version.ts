import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** package version plus the git commit when run from a checkout: "0.1.0+abc1234". */
export function version(): string {
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
    version: string;
  };
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], {
      stdio: 'pipe',
    })
      .toString()
      .trim();
    return `${pkg.version}+${commit}`;
  } catch {
    return pkg.version;
  }
}
