/**
 * Manifests for lab benchmarks: the measured service with real backends, a client, and a fleet of
 * filler services that makes a proxy's rule set as large as a cluster of that many services.
 * Filler endpoints are selector-less EndpointSlices pointing into 198.18.128.0/17, a part of the
 * benchmarking range the lab never routes: no traffic goes there, only rules exist for them.
 */
import { stringify } from 'yaml';

/** The service every connection goes through: two echo backends on the other node. */
export const TARGET = { name: 'target', port: 7000 } as const;
export const CLIENT_POD = 'default/client';

const FILLER_BASE = (198 << 24) + (18 << 16) + (128 << 8); // 198.18.128.0

function address(n: number): string {
  const v = FILLER_BASE + n;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

/** The measured service, its backends (on node-1) and the client (on node-0). */
export function targetManifests(): object[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: TARGET.name },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: TARGET.name } },
        template: {
          metadata: { labels: { app: TARGET.name } },
          spec: {
            nodeName: 'node-1',
            containers: [
              {
                name: 'echo',
                image: 'sluice/echo',
                ports: [{ name: 'tcp', containerPort: TARGET.port }],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: TARGET.name },
      spec: {
        selector: { app: TARGET.name },
        ports: [{ name: 'tcp', port: TARGET.port, targetPort: 'tcp' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client' },
      spec: { nodeName: 'node-0', containers: [{ name: 'client', image: 'sluice/echo' }] },
    },
  ];
}

/** `count` filler services with `endpoints` endpoints each (addresses never reused). */
export function fillerManifests(count: number, endpoints = 10): object[] {
  const docs: object[] = [];
  for (let i = 0; i < count; i++) {
    const name = `filler-${i}`;
    docs.push(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name },
        spec: { ports: [{ name: 'http', port: 80 }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: Array.from({ length: endpoints }, (_, e) => ({
          addresses: [address((i * endpoints + e) % (1 << 15))],
          conditions: { ready: true },
        })),
      },
    );
  }
  return docs;
}

export function toYaml(docs: readonly object[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}
