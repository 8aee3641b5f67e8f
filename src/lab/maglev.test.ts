/**
 * Maglev end to end (issue 10): a flow keeps its backend whichever node receives it.
 *
 * A real ECMP-fronted cluster announces a LoadBalancer address from every node; the router
 * hashes each flow to one of them and, when the node set changes, re-hashes some flows to
 * another node. The packet's 5-tuple is the same whichever node gets it (the destination is the
 * service address, not a node address), so the datapath hashes the full 5-tuple. Here the
 * external client's route to the LoadBalancer address moves from node-0 to node-1, and the same
 * client source ports open new connections: each must reach the same pod as before, although
 * node-1 has no conntrack entry for it and numbers its backends on its own.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPinnedMap } from '../bpf/pinned.js';
import { maglevMaps } from '../datapath/maglev.js';
import { objectKey } from '../model/index.js';
import { requireKernel } from '../testing/privileges.js';
import { agentPinRoot } from './agents.js';
import { Lab } from './lab.js';

const MANIFESTS = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 6
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: echo, image: sluice/echo, ports: [{ name: http, containerPort: 8080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: LoadBalancer
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
`;

/** Opens one connection per given client port, in turn; prints { port: pod name }. */
const CLIENT = `
const net = require('node:net');
const [ip, port, ...ports] = process.argv.slice(1);
const once = (localPort) => new Promise((resolve) => {
  let got = '';
  const s = net.connect({ host: ip, port: Number(port), localPort }, () =>
    s.write('GET /hostname HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'));
  s.setTimeout(3000, () => { s.destroy(); resolve('timeout'); });
  s.on('data', (d) => (got += d));
  s.on('error', (e) => resolve('error ' + (e.code ?? e.message)));
  s.on('close', () => {
    const m = /\\r\\n\\r\\n([^]*)$/.exec(got);
    resolve(m ? m[1].trim() : 'no answer');
  });
});
(async () => {
  const out = {};
  for (const p of ports) out[p] = await once(Number(p));
  console.log(JSON.stringify(out));
})();
`;

const PORTS = Array.from({ length: 40 }, (_, i) => String(42000 + i));

describe('maglev: a flow keeps its backend whichever node receives it (lab)', () => {
  const labName = `m${process.pid % 100000}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  const manifest = join(stateDir, 'maglev.yaml');
  let lab: Lab;

  before(async () => {
    requireKernel();
    writeFileSync(manifest, MANIFESTS);
    lab = await Lab.up({
      files: [manifest],
      nodes: 2,
      proxy: 'sluice',
      stateDir,
      labName,
      agentConfig: { externalBackendSelection: 'maglev' },
    });
  });

  after(async () => {
    await Lab.down(stateDir, labName);
    rmSync(stateDir, { recursive: true, force: true });
    const netns = execFileSync('ip', ['netns', 'list']).toString();
    assert.equal(netns.includes(`sl-${labName}-`), false, 'no namespace of the lab is left');
    assert.equal(existsSync(`/sys/fs/bpf/sluice/lab-${labName}`), false, 'no pin is left');
  });

  const connect = async (ip: string): Promise<Record<string, string>> => {
    const r = await lab.topology.execExternal(
      [process.execPath, '-e', CLIENT, ip, '80', ...PORTS],
      {
        timeoutMs: 60_000,
      },
    );
    return JSON.parse(r.stdout) as Record<string, string>;
  };

  it('every node holds a Maglev table for the LoadBalancer service', () => {
    for (const node of lab.topology.nodes().map((n) => n.name)) {
      const map = openPinnedMap(
        join(agentPinRoot(lab.topology, node), 'lb_maglev'),
        maglevMaps.lb_maglev,
      );
      try {
        assert.ok(map.lookupBatch().length >= 1, `${node}: no table in lb_maglev`);
      } finally {
        map.close();
      }
    }
  });

  it('sends each client port to the same pod via node-0 and then via node-1', async (t) => {
    const web = lab.state.services.get(objectKey('default', 'web'));
    const ip = web?.loadBalancerIP;
    assert.ok(ip, 'the service has an address from the pool');
    const pods = [...lab.state.pods.values()].filter((p) => p.labels.app === 'web');
    assert.ok(new Set(pods.map((p) => p.nodeName)).size === 2, 'pods on both nodes');
    const podNames = pods.map((p) => p.name);

    const viaNode0 = await connect(ip); // the pool is routed via node-0
    await lab.topology.addExternalRoute(`${ip}/32`, 'node-1');
    const viaNode1 = await connect(ip);

    for (const port of PORTS) {
      assert.ok(
        podNames.includes(viaNode0[port] ?? ''),
        `port ${port} via node-0: ${viaNode0[port]}`,
      );
      assert.equal(
        viaNode1[port],
        viaNode0[port],
        `client port ${port}: node-0 and node-1 disagree`,
      );
    }
    const used = new Set(Object.values(viaNode0));
    t.diagnostic(
      `${PORTS.length} flows over ${used.size} of ${pods.length} pods, same pod on both nodes`,
    );
    // 40 flows over 6 pods: with per-flow hashing they spread (all on one pod: 6 * (1/6)^40).
    assert.ok(used.size > 1, 'flows spread over several pods');
  });
});
