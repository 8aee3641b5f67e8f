/**
 * The TrafficOptimization CRD shipped in deploy/kubernetes against the model's schema and the
 * collection the kubernetes source watches: a field added to one and not the other would be
 * pruned by the API server (or refused by the agent) without anyone noticing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { trafficOptimizationSchema } from '../model/traffic-optimization.js';
import { CUSTOM_RESOURCES } from './kubernetes.js';

const CRD = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../deploy/kubernetes/sluice.io_trafficoptimizations.yaml',
);

interface Props {
  properties?: Record<string, Props>;
  items?: Props;
  required?: string[];
}

describe('TrafficOptimization CRD (deploy/kubernetes)', () => {
  const crd = parse(readFileSync(CRD, 'utf8')) as {
    spec: {
      group: string;
      scope: string;
      names: { kind: string; plural: string };
      versions: { name: string; served: boolean; schema: { openAPIV3Schema: Props } }[];
    };
  };

  it('defines the collection the kubernetes source watches', () => {
    const watched = CUSTOM_RESOURCES.find((r) => r.kind === 'TrafficOptimization');
    const [version] = crd.spec.versions;
    assert.deepEqual(
      [crd.spec.group, version?.name, crd.spec.names.plural, crd.spec.names.kind, crd.spec.scope],
      [watched?.group, watched?.version, watched?.plural, 'TrafficOptimization', 'Namespaced'],
    );
    assert.equal(version?.served, true);
  });

  it('has the fields of the model schema, no more, no fewer', () => {
    const spec = crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec;
    const model = trafficOptimizationSchema.shape.spec.shape;
    const keys = (p: Props | undefined) => Object.keys(p?.properties ?? {}).sort();
    assert.deepEqual(keys(spec), Object.keys(model).sort());
    assert.deepEqual(keys(spec?.properties?.tcp), Object.keys(model.tcp.shape).sort());
    assert.deepEqual(
      keys(spec?.properties?.ports?.items),
      Object.keys(model.ports.unwrap().element.shape).sort(),
    );
    assert.deepEqual(spec?.required?.sort(), ['podSelector', 'tcp']);
  });
});
