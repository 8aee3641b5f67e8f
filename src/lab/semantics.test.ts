/**
 * Kubernetes service semantics, end to end in a real lab: manifests in, real packets through
 * real kernels, answers from real workloads. One shared case suite runs against every proxy
 * mode: kube-proxy's iptables and nftables baselines, and sluice (one agent per node), as it runs
 * by default (`sluice`: ClusterIP translated at connect()) and with socket LB off (`sluice-tc`:
 * ClusterIP traffic balanced per packet at TC on the pods' veths).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ManifestError, objectKey } from '../model/index.js';
import { requireKernel } from '../testing/privileges.js';
import type { AgentConfigOverrides } from './agents.js';
import { SOCKET_LB_OFF } from './agents.js';
import { Lab } from './lab.js';
import { prepareLabForXdp } from './xdp-lab.js';
import type { ProxyMode } from './proxy.js';
import type { ProbeOptions, ProbeResult } from './probe/probe.js';
import { runProbe } from './probe/probe.js';

const SEMANTICS = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../src/lab/testdata/semantics.yaml',
);

function netnsOf(prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'])
    .toString()
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

interface SemanticsMode {
  name: string;
  proxy: ProxyMode;
  agentConfig?: AgentConfigOverrides;
  /** Pods' ClusterIP connections are balanced per packet, with conntrack (no socket LB). */
  clusterIpPerPacket?: boolean;
}

const MODES: readonly SemanticsMode[] = [
  { name: 'iptables', proxy: 'iptables', clusterIpPerPacket: true },
  { name: 'nftables', proxy: 'nftables', clusterIpPerPacket: true },
  { name: 'sluice', proxy: 'sluice' },
  { name: 'sluice-tc', proxy: 'sluice', agentConfig: SOCKET_LB_OFF, clusterIpPerPacket: true },
  // The XDP fast path in front of TC on the uplinks (docs/xdp.md).
  { name: 'sluice-xdp', proxy: 'sluice', agentConfig: { xdp: { enabled: true } } },
];

for (const { name: mode, proxy, agentConfig, clusterIpPerPacket } of MODES) {
  describe(`service semantics (${mode})`, () => {
    const labName = `t${process.pid % 100000}${mode === 'sluice-tc' ? 'x' : mode === 'sluice-xdp' ? 'z' : mode[0]}`;
    const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
    let lab: Lab;

    const probe = (
      from: string,
      to: string,
      options: Partial<ProbeOptions> = {},
    ): Promise<ProbeResult> =>
      runProbe(lab.state, lab.topology, from, to, { count: 1, timeoutMs: 2000, ...options });
    // Random backend choice: counts are sized so that missing a backend by chance is below 1e-9
    // per assertion (e.g. 2 backends, 40 attempts: 2 * 2^-40).
    const backendsOf = (r: ProbeResult) => Object.keys(r.backends).sort();
    const podsOf = (app: string) =>
      [...lab.state.pods.values()]
        .filter((p) => p.labels.app === app)
        .map((p) => p.name)
        .sort();
    const reopen = () => (lab = Lab.open(stateDir));

    before(async () => {
      requireKernel();
      lab = await Lab.up({
        files: [SEMANTICS],
        nodes: 2,
        proxy,
        stateDir,
        labName,
        ...(agentConfig ? { agentConfig } : {}),
      });
      if (mode === 'sluice-xdp') prepareLabForXdp(lab);
    });

    after(async () => {
      await Lab.down(stateDir, labName);
      rmSync(stateDir, { recursive: true, force: true });
      assert.deepEqual(netnsOf(`sl-${labName}-`), [], 'no namespace of the lab is left');
      assert.equal(
        existsSync(`/sys/fs/cgroup/unified/sluice/lab-${labName}`),
        false,
        'no cgroup is left',
      );
    });

    it('reaches a pod on the other node by its IP, no proxy involved', async () => {
      const target = [...lab.state.pods.values()].find(
        (p) => p.nodeName === 'node-0' && p.labels.app === 'rr',
      );
      assert.ok(target, 'a pod on node-0');
      const r = await probe('default/client', `default/${target.name}`);
      assert.ok(r.ok, JSON.stringify(r.attempts));
      assert.deepEqual(backendsOf(r), [target.name]);
    });

    it('balances over every ready endpoint', async () => {
      const r = await probe('default/client', 'svc/default/rr', { count: 60 });
      assert.ok(r.ok, JSON.stringify(r.attempts.filter((a) => !a.ok)));
      assert.deepEqual(backendsOf(r), podsOf('rr'), 'all three replicas answer');
    });

    it('sticks to one endpoint with sessionAffinity ClientIP', async () => {
      const r = await probe('default/client', 'svc/default/sticky', { count: 12 });
      assert.ok(r.ok);
      assert.equal(backendsOf(r).length, 1, `one backend, got ${JSON.stringify(r.backends)}`);
    });

    // A per-packet balancer tracks a flow by the client's port, and a client keeps its ports
    // unique per destination only: from one port, a connection to rr and then one to sticky
    // (the same pods) may reach the same pod, and the second must not collide with the first
    // flow's conntrack entry, which outlives the connection. (With socket LB the client's kernel
    // sees the pod's address itself.) Ports below the ephemeral range, so that no connection the
    // kernel made holds them.
    if (clusterIpPerPacket)
      it('answers a client that reuses its port for another service of the same pod', async () => {
        let samePod = 0;
        for (let sourcePort = 20000; sourcePort < 20060 && samePod < 2; sourcePort++) {
          const first = await probe('default/client', 'svc/default/rr', { sourcePort });
          assert.ok(first.ok, `port ${sourcePort}: ${JSON.stringify(first.attempts)}`);
          const second = await probe('default/client', 'svc/default/sticky', { sourcePort });
          assert.ok(second.ok, `port ${sourcePort}, again: ${JSON.stringify(second.attempts)}`);
          if (backendsOf(first)[0] === backendsOf(second)[0]) samePod++;
        }
        // rr picks sticky's pod one time in three: missing twice in 60 tries is below 1e-9.
        assert.equal(samePod, 2, 'two ports reached one pod through both services');
      });

    it('leaves out an unready endpoint', async () => {
      const [unready, ...rest] = podsOf('rr');
      await lab.setPod(objectKey('default', unready ?? ''), 'unready');
      reopen();
      const r = await probe('default/client', 'svc/default/rr', { count: 40 });
      assert.ok(r.ok);
      assert.deepEqual(backendsOf(r), rest.sort());
    });

    it('uses terminating endpoints only when no endpoint is ready', async () => {
      const [unready, terminating, last] = podsOf('rr');
      await lab.setPod(objectKey('default', terminating ?? ''), 'terminate');
      reopen();
      let r = await probe('default/client', 'svc/default/rr', { count: 10 });
      assert.deepEqual(backendsOf(r), [last], 'the one ready endpoint takes everything');
      await lab.setPod(objectKey('default', last ?? ''), 'terminate');
      reopen();
      r = await probe('default/client', 'svc/default/rr', { count: 40 });
      assert.ok(r.ok, 'terminating endpoints still serve');
      assert.deepEqual(backendsOf(r), [last, terminating].sort(), `not the unready ${unready}`);
    });

    it('answers a NodePort from outside on either node', async () => {
      for (const node of ['node-0', 'node-1']) {
        const r = await probe('external', `node/${node}`, { port: 30101, count: 4 });
        assert.ok(r.ok, `${node}: ${JSON.stringify(r.attempts)}`);
        assert.deepEqual(
          backendsOf(r).every((b) => podsOf('local').includes(b)),
          true,
        );
      }
    });

    it('externalTrafficPolicy Local: served by local endpoints, dropped on a node without one', async () => {
      const here = await probe('external', 'node/node-0', { port: 30100, count: 40 });
      assert.ok(here.ok);
      assert.deepEqual(backendsOf(here), podsOf('local'));
      const there = await probe('external', 'node/node-1', { port: 30100, timeoutMs: 500 });
      assert.equal(there.ok, false, 'node-1 has no local endpoint');
      assert.equal(there.attempts[0]?.code, 'ETIMEDOUT', 'dropped, not rejected');
    });

    it('resolves a named targetPort per pod, on every port of a multi-port service', async () => {
      const web = await probe('default/client', 'svc/default/named', { port: 80, count: 40 });
      assert.ok(web.ok, JSON.stringify(web.attempts.filter((a) => !a.ok)));
      assert.deepEqual(
        backendsOf(web),
        ['named-a', 'named-b'],
        '8081 on one pod, 9091 on the other',
      );
      const admin = await probe('default/client', 'svc/default/named', { port: 7000, count: 40 });
      assert.ok(admin.ok);
      assert.deepEqual(backendsOf(admin), ['named-a', 'named-b']);
    });

    it('balances a LoadBalancer address and an externalIP reached from outside', async () => {
      const lb = lab.state.services.get(objectKey('default', 'lb'));
      assert.ok(lb?.loadBalancerIP, 'an address from the pool');
      const viaLb = await probe('external', lb.loadBalancerIP, {
        port: 80,
        proto: 'http',
        count: 6,
      });
      assert.ok(viaLb.ok, JSON.stringify(viaLb.attempts));
      const viaExt = await probe('external', '198.19.200.10', {
        port: 8080,
        proto: 'http',
        count: 6,
      });
      assert.ok(viaExt.ok, JSON.stringify(viaExt.attempts));
      for (const r of [viaLb, viaExt])
        assert.ok(backendsOf(r).every((b) => podsOf('rr').includes(b)));
    });

    it('internalTrafficPolicy Local: only endpoints on the node of the client', async () => {
      const here = await probe('default/client0', 'svc/default/itp-local', { count: 40 });
      assert.ok(here.ok);
      assert.deepEqual(backendsOf(here), podsOf('local'));
      const there = await probe('default/client', 'svc/default/itp-local', { timeoutMs: 500 });
      assert.equal(there.ok, false, 'client runs on node-1, which has no local endpoint');
    });

    it('routes a selector-less service to a user-supplied EndpointSlice', async () => {
      const target = lab.state.pods.get(objectKey('default', 'named-a'));
      assert.ok(target);
      const manual = join(stateDir, 'manual.yaml');
      writeFileSync(
        manual,
        [
          'apiVersion: v1\nkind: Service\nmetadata: { name: manual }\nspec:\n  ports: [{ name: web, port: 80 }]',
          `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: manual-1\n  labels: { kubernetes.io/service-name: manual }\naddressType: IPv4\nports: [{ name: web, port: 8081, protocol: TCP }]\nendpoints: [{ addresses: [${target.ip}], conditions: { ready: true } }]`,
        ].join('\n---\n'),
      );
      await lab.apply([manual]);
      reopen();
      const r = await probe('default/client', 'svc/default/manual', { count: 3 });
      assert.ok(r.ok, JSON.stringify(r.attempts));
      assert.deepEqual(backendsOf(r), ['named-a']);
      await lab.delete([manual]);
      reopen();
      assert.equal(lab.state.services.has(objectKey('default', 'manual')), false);
    });

    it('gives virtual pods endpoints but no namespace or process', async () => {
      const virtual = join(stateDir, 'virtual.yaml');
      writeFileSync(
        virtual,
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: ghost }\nspec:\n  replicas: 4\n  selector: { matchLabels: { app: ghost } }\n  template:\n    metadata: { labels: { app: ghost }, annotations: { sluice.io/virtual: "true" } }\n    spec:\n      containers: [{ name: g, image: sluice/echo, ports: [{ name: http, containerPort: 8080 }] }]\n---\napiVersion: v1\nkind: Service\nmetadata: { name: ghost }\nspec:\n  selector: { app: ghost }\n  ports: [{ port: 80, targetPort: http }]',
      );
      await lab.apply([virtual]);
      reopen();
      const ghosts = [...lab.state.pods.entries()].filter(([, p]) => p.labels.app === 'ghost');
      assert.equal(ghosts.length, 4);
      assert.ok(ghosts.every(([key, p]) => p.virtual && p.ip && !lab.topology.hasPod(key)));
      const slices = [...lab.state.endpointSlices.values()].filter(
        (s) => s.serviceName === 'ghost',
      );
      assert.equal(slices.flatMap((s) => s.endpoints).length, 4);
      await lab.delete([virtual]);
      reopen();
    });

    it('refuses a service without endpoints at once, not by a timeout', async () => {
      const r = await probe('default/client', 'svc/default/empty', { timeoutMs: 5000 });
      assert.equal(r.ok, false);
      assert.equal(r.attempts[0]?.code, 'ECONNREFUSED');
    });

    it('gives a headless service no virtual IP', async () => {
      const headless = lab.state.services.get(objectKey('default', 'headless'));
      assert.equal(headless?.clusterIP, 'None');
      await assert.rejects(
        probe('default/client', 'svc/default/headless'),
        /headless: it has no ClusterIP/,
      );
    });

    it('rejects a bad manifest with its field path and leaves the running lab unchanged', async () => {
      const bad = join(stateDir, 'bad.yaml');
      writeFileSync(
        bad,
        [
          'apiVersion: v1\nkind: Service\nmetadata: { name: rr }\nspec:\n  selector: { app: rr }\n  ports: [{ port: 80 }]',
          'apiVersion: v1\nkind: Service\nmetadata: { name: broken }\nspec:\n  ports: [{ port: 70000, protocol: TCP }]',
        ].join('\n---\n'),
      );
      const before = JSON.stringify([...lab.state.services.entries()]);
      await assert.rejects(
        lab.apply([bad]),
        (e: unknown) =>
          e instanceof ManifestError &&
          /bad\.yaml#1 Service default\/broken: spec\.ports\[0\]\.port/.test(e.message),
      );
      reopen();
      assert.equal(JSON.stringify([...lab.state.services.entries()]), before);
      const r = await probe('default/client', 'svc/default/sticky');
      assert.ok(r.ok, `traffic still flows: ${JSON.stringify(r.attempts)}`);
    });
  });
}
