/**
 * How `sluice doctor` shows its results: aligned text, one line per capability, or a JSON array.
 * Pure functions of the results.
 */
import type { CheckResult, Status } from './checks.js';
import { oneLine } from './checks.js';

const STATUS_WIDTH = Math.max(
  ...(['OK', 'MISSING', 'WARN'] satisfies Status[]).map((s) => s.length),
);

/** `STATUS  name  detail`, plus `; fix: ...` when the capability is not OK. */
export function formatLine(result: CheckResult, nameWidth = result.name.length): string {
  const detail = oneLine(result.detail);
  const text = result.fix === null ? detail : `${detail}; fix: ${oneLine(result.fix)}`;
  return `${result.status.padEnd(STATUS_WIDTH)}  ${oneLine(result.name).padEnd(nameWidth)}  ${text}`.trimEnd();
}

/** 1 when a required capability is missing, else 0 (warnings do not fail). */
export function exitCode(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.required && r.status === 'MISSING') ? 1 : 0;
}

export function summary(results: readonly CheckResult[]): string {
  const count = (s: Status): number => results.filter((r) => r.status === s).length;
  const missing = results.filter((r) => r.required && r.status === 'MISSING').map((r) => r.name);
  const tally = `${count('OK')} OK, ${count('WARN')} WARN, ${count('MISSING')} MISSING`;
  if (missing.length === 0) return `sluice can run here (${tally}).`;
  const noun = missing.length === 1 ? 'capability is' : 'capabilities are';
  return `sluice cannot run here: required ${noun} missing: ${missing.join(', ')} (${tally}).`;
}

/** The text report: one aligned line per result, a blank line, then the summary. */
export function formatText(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => oneLine(r.name).length));
  const lines = results.map((r) => formatLine(r, width));
  return `${[...lines, '', summary(results)].join('\n')}\n`;
}

/** The `--json` report: an array of {name, status, required, detail, fix}, in check order. */
export function formatJson(results: readonly CheckResult[]): string {
  const plain = results.map(({ name, status, required, detail, fix }) => ({
    name,
    status,
    required,
    detail,
    fix,
  }));
  return `${JSON.stringify(plain, null, 2)}\n`;
}
