import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServicePortView } from '../model/types.js';
import { changedServices } from './endpoints.js';
import { endpoint, view } from './fixtures.js';
import { nftablesEndpointNames, nftablesServiceChains } from './names.js';
import {
  renderNftables,
  renderNftablesPartial,
  renderNftablesStaleChainDeletion,
} from './nftables.js';

const node = { name: 'node-a', ip: '198.18.0.10', clusterCIDR: '198.18.16.0/20' };
const T = 'ip kube-proxy';

const web = (over: Partial<ServicePortView> = {}): ServicePortView =>
  view({
    serviceName: 'web',
    portName: 'http',
    clusterIP: '198.19.0.10',
    endpoints: [
      endpoint('198.18.16.2', 8080),
      endpoint('198.18.16.3', 8080),
      endpoint('198.18.17.2', 8080),
    ],
    ...over,
  });
const chains = nftablesServiceChains('default', 'web', 'tcp', 'http');
const ep = (ip: string, port = 8080): { chain: string; affinitySet: string } =>
  nftablesEndpointNames('default', 'web', 'tcp', 'http', ip, port);

/** The rules added to one chain, without the "add rule ip kube-proxy CHAIN " prefix. */
function rules(script: string, chain: string): string[] {
  const prefix = `add rule ${T} ${chain} `;
  return script
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}
const lines = (script: string): string[] => script.split('\n');

describe('nftables rendering (kube-proxy nftables mode, KEP-3866)', () => {
  it('builds one table with base chains, verdict maps and the dispatch rules', () => {
    const { script } = renderNftables([web()], node, { serviceCIDRs: ['198.19.0.0/17'] });
    const l = lines(script);
    assert.equal(l[0], `add table ${T} { comment "rules for kube-proxy" ; }`);
    for (const base of [
      'add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }',
      'add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }',
      'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }',
      'add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }',
    ]) {
      assert.ok(l.includes(base), base);
    }
    assert.deepEqual(rules(script, 'nat-prerouting'), ['jump services']);
    assert.deepEqual(rules(script, 'filter-forward'), [
      'ct state new jump service-endpoints-check',
      'ct state new jump cluster-ips-check',
    ]);
    assert.deepEqual(rules(script, 'services'), [
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    ]);
    assert.ok(l.includes(`add element ${T} nodeport-ips { 198.18.0.10 }`));
    assert.deepEqual(rules(script, 'masquerading'), [
      'mark and 0x00004000 == 0 return',
      'mark set mark xor 0x00004000',
      'masquerade fully-random',
    ]);
    assert.deepEqual(rules(script, 'cluster-ips-check'), [
      'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
      'ip daddr { 198.19.0.0/17 } drop comment "Drop traffic to unallocated ClusterIPs"',
    ]);
    // Every container is flushed and refilled on a full sync.
    for (const c of [
      'set ip kube-proxy cluster-ips',
      'map ip kube-proxy service-ips',
      'map ip kube-proxy service-nodeports',
    ]) {
      assert.ok(l.includes(`flush ${c}`), c);
    }
  });

  it('dispatches a ClusterIP through service-ips and numgen over 3 endpoints', () => {
    const { script } = renderNftables([web()], node);
    const l = lines(script);
    assert.ok(l.includes(`add element ${T} cluster-ips { 198.19.0.10 }`));
    assert.ok(
      l.includes(
        `add element ${T} service-ips { 198.19.0.10 . tcp . 80 : goto ${chains.cluster} }`,
      ),
    );
    assert.deepEqual(rules(script, chains.cluster), [
      'ip daddr 198.19.0.10 tcp dport 80 ip saddr != 198.18.16.0/20 jump mark-for-masquerade',
      `numgen random mod 3 vmap { 0 : goto ${ep('198.18.16.2').chain} , 1 : goto ${ep('198.18.16.3').chain} , 2 : goto ${ep('198.18.17.2').chain} }`,
    ]);
    assert.deepEqual(rules(script, ep('198.18.17.2').chain), [
      'ip saddr 198.18.17.2 jump mark-for-masquerade',
      'meta l4proto tcp dnat to 198.18.17.2:8080',
    ]);
  });

  it('rejects a service without endpoints through no-endpoint-services', () => {
    const { script, state } = renderNftables(
      [web({ endpoints: [], nodePort: 30080, loadBalancerIPs: ['198.19.128.1'] })],
      node,
    );
    const l = lines(script);
    assert.ok(
      l.includes(
        `add element ${T} no-endpoint-services { 198.19.0.10 . tcp . 80 comment "default/web:http" : goto reject-chain }`,
      ),
    );
    assert.ok(
      l.includes(
        `add element ${T} no-endpoint-services { 198.19.128.1 . tcp . 80 comment "default/web:http" : goto reject-chain }`,
      ),
    );
    assert.ok(
      l.includes(
        `add element ${T} no-endpoint-nodeports { tcp . 30080 comment "default/web:http" : goto reject-chain }`,
      ),
    );
    assert.ok(l.includes(`add element ${T} cluster-ips { 198.19.0.10 }`));
    assert.equal(state.elements['service-ips'].size, 0);
    assert.equal(state.chains.size, 0);
    assert.deepEqual(rules(script, 'reject-chain'), ['reject']);
  });

  it('sends NodePort, LoadBalancer and external IPs to the external chain, which masquerades', () => {
    const { script } = renderNftables(
      [web({ nodePort: 30080, loadBalancerIPs: ['198.19.128.1'], externalIPs: ['198.19.128.7'] })],
      node,
    );
    const l = lines(script);
    assert.ok(
      l.includes(`add element ${T} service-nodeports { tcp . 30080 : goto ${chains.external} }`),
    );
    assert.ok(
      l.includes(
        `add element ${T} service-ips { 198.19.128.1 . tcp . 80 : goto ${chains.external} }`,
      ),
    );
    assert.ok(
      l.includes(
        `add element ${T} service-ips { 198.19.128.7 . tcp . 80 : goto ${chains.external} }`,
      ),
    );
    assert.deepEqual(rules(script, chains.external), [
      'jump mark-for-masquerade',
      `goto ${chains.cluster}`,
    ]);
  });

  it('externalTrafficPolicy Local: local chain, short-circuits, DROP when no local endpoint', () => {
    const local = renderNftables(
      [
        web({
          nodePort: 30080,
          externalTrafficPolicy: 'Local',
          endpoints: [
            endpoint('198.18.16.2', 8080, { isLocal: true }),
            endpoint('198.18.17.2', 8080),
          ],
        }),
      ],
      node,
    ).script;
    assert.deepEqual(rules(local, chains.external), [
      `ip saddr 198.18.16.0/20 goto ${chains.cluster} comment "short-circuit pod traffic"`,
      'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
      `fib saddr type local goto ${chains.cluster} comment "short-circuit local traffic"`,
      `goto ${chains.local}`,
    ]);
    assert.deepEqual(rules(local, chains.local), [
      `numgen random mod 1 vmap { 0 : goto ${ep('198.18.16.2').chain} }`,
    ]);

    const none = renderNftables(
      [
        web({
          nodePort: 30080,
          externalTrafficPolicy: 'Local',
          endpoints: [endpoint('198.18.17.2', 8080)],
        }),
      ],
      node,
    ).script;
    assert.ok(
      lines(none).includes(
        `add element ${T} no-endpoint-nodeports { tcp . 30080 comment "default/web:http" : drop }`,
      ),
    );
    assert.equal(rules(none, chains.external).length, 3, 'no fall-through to a policy chain');
    assert.equal(rules(none, chains.local).length, 0);
    assert.ok(
      lines(none).includes(
        `add element ${T} service-ips { 198.19.0.10 . tcp . 80 : goto ${chains.cluster} }`,
      ),
    );
  });

  it('internalTrafficPolicy Local without a local endpoint drops ClusterIP traffic', () => {
    const { script } = renderNftables(
      [web({ internalTrafficPolicy: 'Local', endpoints: [endpoint('198.18.17.2', 8080)] })],
      node,
    );
    assert.ok(
      lines(script).includes(
        `add element ${T} no-endpoint-services { 198.19.0.10 . tcp . 80 comment "default/web:http" : drop }`,
      ),
    );
  });

  it('implements ClientIP affinity with per-endpoint dynamic sets that time out', () => {
    const { script, state } = renderNftables(
      [
        web({
          sessionAffinity: { timeoutSeconds: 600 },
          endpoints: [endpoint('198.18.16.2', 8080)],
        }),
      ],
      node,
    );
    const e = ep('198.18.16.2');
    assert.ok(
      lines(script).includes(
        `add set ${T} ${e.affinitySet} { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }`,
      ),
    );
    assert.deepEqual(rules(script, chains.cluster).slice(1), [
      `ip saddr @${e.affinitySet} goto ${e.chain}`,
      `numgen random mod 1 vmap { 0 : goto ${e.chain} }`,
    ]);
    assert.deepEqual(rules(script, e.chain), [
      'ip saddr 198.18.16.2 jump mark-for-masquerade',
      `update @${e.affinitySet} { ip saddr }`,
      'meta l4proto tcp dnat to 198.18.16.2:8080',
    ]);
    assert.deepEqual([...state.affinitySets], [e.affinitySet]);
  });

  it('uses serving terminating endpoints only when no endpoint is ready', () => {
    const { script } = renderNftables(
      [
        web({
          endpoints: [
            endpoint('198.18.16.2', 8080, { ready: false, serving: true, terminating: true }),
            endpoint('198.18.16.3', 8080, { ready: false, serving: false, terminating: true }),
          ],
        }),
      ],
      node,
    );
    assert.equal(
      rules(script, chains.cluster)[1],
      `numgen random mod 1 vmap { 0 : goto ${ep('198.18.16.2').chain} }`,
    );
  });

  it('nodePortAddresses all: fib daddr type local, no nodeport-ips set', () => {
    const { script } = renderNftables([web()], node, { nodePortAddresses: 'all' });
    assert.ok(lines(script).includes(`delete set ${T} nodeport-ips`));
    assert.equal(
      rules(script, 'services')[1],
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    );
  });

  it('partial sync touches only changed services and diffs map elements', () => {
    const a = view({
      serviceName: 'a',
      clusterIP: '198.19.0.20',
      endpoints: [endpoint('198.18.16.20', 80)],
    });
    const b = view({
      serviceName: 'b',
      clusterIP: '198.19.0.21',
      endpoints: [endpoint('198.18.16.21', 80)],
    });
    const gone = view({
      serviceName: 'gone',
      clusterIP: '198.19.0.22',
      endpoints: [endpoint('198.18.16.22', 80)],
    });
    const added = view({ serviceName: 'new', clusterIP: '198.19.0.23' });
    const full = renderNftables([a, b, gone], node);
    const next = [a, { ...b, endpoints: [endpoint('198.18.16.31', 80)] }, added];
    const partial = renderNftablesPartial(next, node, {
      changedServices: changedServices([a, b, gone], next),
      previous: full.state,
    });
    const l = lines(partial.script);
    const aChains = nftablesServiceChains('default', 'a', 'tcp', '');
    const bChains = nftablesServiceChains('default', 'b', 'tcp', '');
    const goneChains = nftablesServiceChains('default', 'gone', 'tcp', '');
    const name = (svc: string, ip: string): string =>
      nftablesEndpointNames('default', svc, 'tcp', '', ip, 80).chain;

    assert.ok(!partial.script.includes('add table'), 'no skeleton on a partial sync');
    // a unchanged: nothing about it at all.
    assert.ok(!partial.script.includes(aChains.cluster));
    // b changed: its chain is rewritten; its service-ips element is unchanged, so not touched.
    assert.ok(l.includes(`flush chain ${T} ${bChains.cluster}`));
    assert.ok(
      l.includes(
        `add rule ${T} ${name('b', '198.18.16.31')} meta l4proto tcp dnat to 198.18.16.31:80`,
      ),
    );
    assert.ok(!l.some((x) => x.startsWith(`add element ${T} service-ips { 198.19.0.21 `)));
    // gone: chains flushed (deleted later), elements deleted.
    assert.deepEqual(
      partial.staleChains,
      [goneChains.cluster, name('b', '198.18.16.21'), name('gone', '198.18.16.22')].sort(),
    );
    for (const c of partial.staleChains) assert.ok(l.includes(`flush chain ${T} ${c}`));
    assert.ok(l.includes(`delete element ${T} service-ips { 198.19.0.22 . tcp . 80 }`));
    assert.ok(l.includes(`delete element ${T} cluster-ips { 198.19.0.22 }`));
    // new, without endpoints: only elements.
    assert.ok(l.includes(`add element ${T} cluster-ips { 198.19.0.23 }`));
    assert.ok(
      l.includes(
        `add element ${T} no-endpoint-services { 198.19.0.23 . tcp . 80 comment "default/new" : goto reject-chain }`,
      ),
    );

    // A later transaction deletes the stale chains.
    const del = renderNftablesStaleChainDeletion(partial.state);
    assert.deepEqual(
      lines(del.script).filter((x) => x !== ''),
      partial.staleChains.map((c) => `delete chain ${T} ${c}`),
    );
    assert.equal(del.state.staleChains.size, 0);
    assert.ok(del.state.chains.has(aChains.cluster));

    // A value change is a delete + add of the element.
    const moved = renderNftablesPartial([a, { ...b, endpoints: [] }], node, {
      changedServices: ['default/b'],
      previous: renderNftables([a, b], node).state,
    });
    const m = lines(moved.script);
    assert.ok(m.includes(`delete element ${T} service-ips { 198.19.0.21 . tcp . 80 }`));
    assert.ok(
      m.includes(
        `add element ${T} no-endpoint-services { 198.19.0.21 . tcp . 80 comment "default/b" : goto reject-chain }`,
      ),
    );
  });

  it('deletes stale affinity sets at once', () => {
    const withAffinity = web({
      sessionAffinity: { timeoutSeconds: 600 },
      endpoints: [endpoint('198.18.16.2', 8080)],
    });
    const first = renderNftables([withAffinity], node);
    const second = renderNftablesPartial([{ ...withAffinity, sessionAffinity: null }], node, {
      changedServices: ['default/web'],
      previous: first.state,
    });
    assert.ok(lines(second.script).includes(`delete set ${T} ${ep('198.18.16.2').affinitySet}`));
    assert.equal(second.state.affinitySets.size, 0);
  });
});
