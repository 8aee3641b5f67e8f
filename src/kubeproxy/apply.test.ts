/**
 * Lab tier: the kube-proxy baselines in a real kernel. Three throwaway namespaces,
 * sl-test-<pid>-kp-{node,client,backend}: the client reaches the node over one veth, the node
 * reaches a backend "pod" (a Node TCP server answering its own IP) over another. The node gets
 * the rules; the client connects to ClusterIPs and a NodePort. Needs root: without it the test
 * fails (never skips). Everything is removed in finally; the root namespace is checked to hold
 * none of it afterwards.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { ServicePortView } from '../model/types.js';
import {
  applyIptables,
  applyNftables,
  ensureIptablesJumps,
  flushProxy,
  iptablesChains,
  nftablesObjects,
  type IptablesBackendChoice,
} from './apply.js';
import { changedServices } from './endpoints.js';
import { endpoint, view } from './fixtures.js';
import { renderIptables, renderIptablesPartial } from './iptables.js';
import {
  renderNftables,
  renderNftablesPartial,
  renderNftablesStaleChainDeletion,
} from './nftables.js';

const execFileAsync = promisify(execFile);

const NODE_IP = '198.18.0.10';
const CLIENT_IP = '198.18.0.2';
const GATEWAY_IP = '198.18.16.1';
const BACKEND_IP = '198.18.16.2';
const BACKEND_PORT = 8080;
const node = { name: 'node-a', ip: NODE_IP, clusterCIDR: '198.18.16.0/20' };

const backend = endpoint(BACKEND_IP, BACKEND_PORT, { isLocal: true });
const web = view({
  serviceName: 'web',
  portName: 'http',
  clusterIP: '198.19.0.10',
  nodePort: 30080,
  endpoints: [backend],
});
const empty = view({ serviceName: 'empty', portName: 'http', clusterIP: '198.19.0.11' });
const initial: ServicePortView[] = [web, empty];
/** The partial sync under test: "empty" gets the backend. */
const filled: ServicePortView[] = [web, { ...empty, endpoints: [backend] }];

function requireRoot(): void {
  if (process.geteuid?.() !== 0) {
    throw new Error('kube-proxy baseline tests need root (they program netfilter in namespaces)');
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}
function inNs(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: 'pipe' }).toString();
}

interface Testbed {
  node: string;
  client: string;
  backend: string;
}

let serial = 0;

async function withTestbed(fn: (t: Testbed) => Promise<void>): Promise<void> {
  const prefix = `sl-test-${process.pid}-kp${serial++}`;
  const t: Testbed = {
    node: `${prefix}-node`,
    client: `${prefix}-client`,
    backend: `${prefix}-backend`,
  };
  const made: string[] = [];
  let server: ChildProcess | undefined;
  try {
    for (const ns of [t.node, t.client, t.backend]) {
      ip('netns', 'add', ns);
      made.push(ns);
      inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    ip(
      '-n',
      t.node,
      'link',
      'add',
      'kp-client',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      t.client,
    );
    ip(
      '-n',
      t.node,
      'link',
      'add',
      'kp-pod',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      t.backend,
    );
    ip('-n', t.node, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'kp-client');
    ip('-n', t.node, 'addr', 'add', `${GATEWAY_IP}/24`, 'dev', 'kp-pod');
    ip('-n', t.client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
    ip('-n', t.backend, 'addr', 'add', `${BACKEND_IP}/24`, 'dev', 'eth0');
    for (const [ns, dev] of [
      [t.node, 'kp-client'],
      [t.node, 'kp-pod'],
      [t.client, 'eth0'],
      [t.backend, 'eth0'],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    ip('-n', t.client, 'route', 'add', 'default', 'via', NODE_IP);
    ip('-n', t.backend, 'route', 'add', 'default', 'via', GATEWAY_IP);
    inNs(t.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    // A node has a route for ClusterIPs (usually its default route, here towards the client's
    // side): without one, a packet to a ClusterIP without endpoints dies in routing before the
    // filter hooks can reject it, and the client sees a timeout instead of ECONNREFUSED.
    ip('-n', t.node, 'route', 'add', '198.19.0.0/16', 'via', CLIENT_IP);
    // That route leaves by the interface the client's packet came in on, so the kernel sends
    // an ICMP redirect first, and the redirect uses up the per-host ICMP rate-limit tokens: the
    // REJECT's port-unreachable is then suppressed and the client times out. Real nodes (and
    // the lab's, for clients on the fabric) need send_redirects off, on "all" and the device.
    inNs(t.node, 'sysctl', '-qw', 'net.ipv4.conf.all.send_redirects=0');
    inNs(t.node, 'sysctl', '-qw', 'net.ipv4.conf.kp-client.send_redirects=0');

    server = await startBackend(t.backend);
    await fn(t);
  } finally {
    if (server?.pid !== undefined && server.exitCode === null) {
      process.kill(server.pid, 'SIGKILL');
      await new Promise((resolve) => server?.once('exit', resolve));
    }
    for (const ns of made) ip('netns', 'delete', ns);
  }
}

/** A TCP server in the backend namespace that answers every connection with its own IP. */
function startBackend(ns: string): Promise<ChildProcess> {
  const code = `require('node:net').createServer((c) => c.end('${BACKEND_IP}'))
    .listen(${BACKEND_PORT}, '0.0.0.0', () => console.log('ready'));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => reject(new Error(`backend server exited (${c})`)));
    child.stdout?.once('data', () => resolve(child));
  });
}

interface ConnectResult {
  ok: boolean;
  data?: string;
  error?: string;
  ms: number;
}

/** Connects from the client namespace; a 3 s timeout reports TIMEOUT. */
async function connect(t: Testbed, host: string, port: number): Promise<ConnectResult> {
  const code = `const s = require('node:net').connect(${port}, '${host}');
    const t0 = Date.now(); let data = '';
    const done = (r) => { console.log(JSON.stringify({ ...r, ms: Date.now() - t0 })); process.exit(0); };
    s.setTimeout(3000, () => done({ ok: false, error: 'TIMEOUT' }));
    s.on('data', (d) => { data += d; });
    s.on('end', () => done({ ok: true, data }));
    s.on('error', (e) => done({ ok: false, error: e.code }));`;
  const { stdout } = await execFileAsync(
    'ip',
    ['netns', 'exec', t.client, process.execPath, '-e', code],
    {
      timeout: 15000,
    },
  );
  return JSON.parse(stdout) as ConnectResult;
}

async function assertServing(t: Testbed, label: string): Promise<void> {
  const hit = await connect(t, '198.19.0.10', 80);
  assert.deepEqual(
    { ok: hit.ok, data: hit.data },
    { ok: true, data: BACKEND_IP },
    `${label}: ClusterIP`,
  );
  const nodePort = await connect(t, NODE_IP, 30080);
  assert.deepEqual(
    { ok: nodePort.ok, data: nodePort.data },
    { ok: true, data: BACKEND_IP },
    `${label}: NodePort`,
  );
}

async function assertRefused(t: Testbed, label: string): Promise<void> {
  const refused = await connect(t, '198.19.0.11', 80);
  assert.equal(refused.error, 'ECONNREFUSED', `${label}: no endpoints must be refused at once`);
}

function rootHasNoTrace(): void {
  const save = (cmd: string): string => execFileSync(cmd, { stdio: 'pipe' }).toString();
  assert.ok(!save('iptables-save').includes('KUBE-'), 'root namespace iptables (nft) untouched');
  assert.ok(
    !save('iptables-legacy-save').includes('KUBE-'),
    'root namespace iptables-legacy untouched',
  );
  const ruleset = execFileSync('nft', ['list', 'ruleset'], { stdio: 'pipe' }).toString();
  assert.ok(!ruleset.includes('kube-proxy'), 'root namespace nftables untouched');
  const left = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' }).toString();
  assert.ok(!left.includes(`sl-test-${process.pid}-kp`), 'test namespaces deleted');
}

describe('kube-proxy baselines in a real kernel (lab tier, needs root)', () => {
  after(rootHasNoTrace);

  for (const backendChoice of ['default', 'legacy'] as const satisfies IptablesBackendChoice[]) {
    it(`iptables mode, ${backendChoice} iptables-restore: full sync, partial sync, flush`, async () => {
      requireRoot();
      await withTestbed(async (t) => {
        const jumps = await ensureIptablesJumps(t.node, { backend: backendChoice });
        assert.equal(jumps.inserted, 14);
        const full = renderIptables(initial, node);
        const applied = await applyIptables(t.node, full.text, { backend: backendChoice });
        assert.equal(applied.backend, backendChoice === 'legacy' ? 'legacy' : 'nft');
        assert.ok(applied.durationMs > 0);
        await assertServing(t, 'full sync');
        await assertRefused(t, 'full sync');

        const partial = renderIptablesPartial(filled, node, {
          changedServices: changedServices(initial, filled),
          existingNatChains: await iptablesChains(t.node, 'nat', { backend: backendChoice }),
        });
        await applyIptables(t.node, partial.text, { backend: backendChoice });
        await assertServing(t, 'partial sync');
        const nowFilled = await connect(t, '198.19.0.11', 80);
        assert.equal(nowFilled.data, BACKEND_IP, 'partial sync gave "empty" its endpoint');
        // Re-running the full-sync preamble finds every jump in place.
        assert.equal((await ensureIptablesJumps(t.node, { backend: backendChoice })).inserted, 0);

        const flushed = await flushProxy(t.node, 'iptables');
        assert.ok(Object.values(flushed.removed).some((n) => n > 0));
        const save = backendChoice === 'legacy' ? 'iptables-legacy-save' : 'iptables-save';
        assert.ok(!inNs(t.node, save).includes('KUBE-'), 'flushProxy removed every KUBE-* chain');
      });
    });
  }

  it('nftables mode: full sync, partial sync, stale chains, flush', async () => {
    requireRoot();
    await withTestbed(async (t) => {
      const full = renderNftables(initial, node, { serviceCIDRs: ['198.19.0.0/17'] });
      const applied = await applyNftables(t.node, full.script);
      assert.ok(applied.durationMs > 0);
      await assertServing(t, 'full sync');
      await assertRefused(t, 'full sync');

      const partial = renderNftablesPartial(filled, node, {
        changedServices: changedServices(initial, filled),
        previous: full.state,
      });
      await applyNftables(t.node, partial.script);
      await assertServing(t, 'partial sync');
      assert.equal((await connect(t, '198.19.0.11', 80)).data, BACKEND_IP);

      // Drop "web": its chains go stale, then a later transaction deletes them.
      const onlyEmpty = renderNftablesPartial([filled[1] as ServicePortView], node, {
        changedServices: ['default/web'],
        previous: partial.state,
      });
      await applyNftables(t.node, onlyEmpty.script);
      assert.equal(onlyEmpty.staleChains.length, 3, 'service, external and endpoint chains');
      const deletion = renderNftablesStaleChainDeletion(onlyEmpty.state);
      await applyNftables(t.node, deletion.script);
      const chains = await nftablesObjects(t.node, 'chains');
      assert.deepEqual(
        chains.filter((c) => c.includes('/')).sort(),
        [...deletion.state.chains].sort(),
        'the table holds exactly the chains the state says',
      );
      assert.equal((await connect(t, '198.19.0.11', 80)).data, BACKEND_IP);

      await flushProxy(t.node, 'nftables');
      assert.ok(!inNs(t.node, 'nft', 'list', 'ruleset').includes('kube-proxy'));
    });
  });

  it("refuses to program a namespace that is not the project's own", async () => {
    await assert.rejects(applyNftables('default', ''), RangeError);
    await assert.rejects(flushProxy('', 'iptables'), RangeError);
  });
});
