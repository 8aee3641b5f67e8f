/**
 * Kubernetes name and label syntax (k8s.io/apimachinery/pkg/util/validation), which the OpenAPI
 * schemas do not encode. Each check returns undefined when the value is valid, else the reason.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function checkDns1123Label(value: string): string | undefined {
  if (value.length > 63) return `must be no more than 63 characters (got ${value.length})`;
  if (!DNS1123_LABEL.test(value)) {
    return `must be a lowercase RFC 1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

export function checkDns1123Subdomain(value: string): string | undefined {
  if (value.length > 253) return `must be no more than 253 characters (got ${value.length})`;
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return `must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

export function checkDns1035Label(value: string): string | undefined {
  if (value.length > 63) return `must be no more than 63 characters (got ${value.length})`;
  if (!DNS1035_LABEL.test(value)) {
    return `must be an RFC 1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

/** A label or annotation key: an optional DNS subdomain prefix and '/', then a name. */
export function checkQualifiedName(value: string): string | undefined {
  const parts = value.split('/');
  let name = value;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix === '') return `prefix part must be non-empty (got ${JSON.stringify(value)})`;
    const bad = checkDns1123Subdomain(prefix);
    if (bad) return `prefix part ${bad}`;
  } else if (parts.length > 2) {
    return `must be a qualified name: an optional DNS subdomain prefix and '/', then a name (got ${JSON.stringify(value)})`;
  }
  if (name === '') return `name part must be non-empty (got ${JSON.stringify(value)})`;
  if (name.length > 63) return `name part must be no more than 63 characters (got ${name.length})`;
  if (!QUALIFIED_NAME_PART.test(name)) {
    return `name part must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

export function checkLabelValue(value: string): string | undefined {
  if (value.length > 63) return `must be no more than 63 characters (got ${value.length})`;
  if (!LABEL_VALUE.test(value)) {
    return `must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

/**
 * A named port (IANA_SVC_NAME, RFC 6335): at most 15 characters, lowercase letters, digits and
 * '-', at least one letter, no leading, trailing or double '-'.
 */
export function checkPortName(value: string): string | undefined {
  if (value.length > 15) return `must be no more than 15 characters (got ${JSON.stringify(value)})`;
  if (!IANA_SVC_NAME.test(value)) {
    return `must contain only lowercase letters, digits and '-', starting and ending with a letter or digit (got ${JSON.stringify(value)})`;
  }
  if (value.includes('--')) return `must not contain '--' (got ${JSON.stringify(value)})`;
  if (!/[a-z]/.test(value))
    return `must contain at least one letter (got ${JSON.stringify(value)})`;
  return undefined;
}
