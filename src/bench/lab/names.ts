/**
 * Lab names for benchmark labs. A scenario's base name (`bi`, `hs`, ...) gets this process's
 * run tag, so two `sluice bench` runs on one machine (a CI job beside a developer's run) never
 * build, or tear down, each other's labs. Lab names allow 12 characters of [a-z0-9].
 */
const RUN_TAG = (process.pid % 36 ** 4).toString(36);

export function benchLabName(base: string): string {
  return `${base}${RUN_TAG}`;
}
