/**
 * Label selectors (k8s.io/apimachinery/pkg/apis/meta/v1 LabelSelector) as Deployments,
 * Services, NetworkPolicies and CiliumNetworkPolicies use them.
 *
 * - A Service selector is a plain map: every pair must match. (An empty or absent Service
 *   selector means "no selector", which the EndpointSlice controller treats as selector-less;
 *   that decision is the caller's, not this module's.)
 * - A LabelSelector ANDs matchLabels and matchExpressions; an empty LabelSelector ({})
 *   matches everything. In: the label is present with one of the values; NotIn: absent, or
 *   present with none of the values; Exists / DoesNotExist: presence only.
 */
import { checkLabelValue, checkQualifiedName } from './names.js';
import { keyPath } from './paths.js';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type Labels = Readonly<Record<string, string>>;

/** Every key/value of the map selector is present in labels. */
export function matchesLabels(selector: Labels, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return true;
}

export function matchesRequirement(req: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, req.key);
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return has && values.includes(labels[req.key] ?? '');
    case 'NotIn':
      return !has || !values.includes(labels[req.key] ?? '');
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** LabelSelector semantics: {} matches everything. */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  if (selector.matchLabels && !matchesLabels(selector.matchLabels, labels)) return false;
  return (selector.matchExpressions ?? []).every((req) => matchesRequirement(req, labels));
}

export function isEmptySelector(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}

export interface SelectorProblem {
  /** Relative to the selector, e.g. matchExpressions[0].values. */
  path: string;
  message: string;
}

/** Label keys and values of a plain label map (labels, or a Service/matchLabels selector). */
export function checkLabels(labels: unknown, prefix: string): SelectorProblem[] {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return [];
  const problems: SelectorProblem[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const path = `${prefix}${keyPath(key)}`;
    const badKey = checkQualifiedName(key);
    if (badKey) problems.push({ path, message: `invalid label key: ${badKey}` });
    if (typeof value === 'string') {
      const badValue = checkLabelValue(value);
      if (badValue) problems.push({ path, message: `invalid label value: ${badValue}` });
    }
  }
  return problems;
}

/** The rules of LabelSelector beyond its schema: key/value syntax and operator/values shape. */
export function checkLabelSelector(selector: unknown, prefix: string): SelectorProblem[] {
  if (typeof selector !== 'object' || selector === null || Array.isArray(selector)) return [];
  const s = selector as Record<string, unknown>;
  const problems = checkLabels(s.matchLabels, `${prefix}.matchLabels`);
  const expressions = Array.isArray(s.matchExpressions) ? (s.matchExpressions as unknown[]) : [];
  expressions.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null) return;
    const req = raw as Record<string, unknown>;
    const at = `${prefix}.matchExpressions[${i}]`;
    if (typeof req.key === 'string') {
      const bad = checkQualifiedName(req.key);
      if (bad) problems.push({ path: `${at}.key`, message: `invalid label key: ${bad}` });
    }
    const values = Array.isArray(req.values) ? (req.values as unknown[]) : [];
    switch (req.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) {
          problems.push({
            path: `${at}.values`,
            message: `must be non-empty when operator is ${req.operator}`,
          });
        }
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) {
          problems.push({
            path: `${at}.values`,
            message: `must be empty when operator is ${req.operator}`,
          });
        }
        break;
      default:
        problems.push({
          path: `${at}.operator`,
          message: `must be one of In, NotIn, Exists, DoesNotExist (got ${JSON.stringify(req.operator)})`,
        });
    }
    values.forEach((v, j) => {
      if (typeof v !== 'string') return;
      const bad = checkLabelValue(v);
      if (bad)
        problems.push({ path: `${at}.values[${j}]`, message: `invalid label value: ${bad}` });
    });
  });
  return problems;
}
