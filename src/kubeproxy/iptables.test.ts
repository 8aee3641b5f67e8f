import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServicePortView } from '../model/types.js';
import { changedServices } from './endpoints.js';
import { endpoint, syntheticViews, view } from './fixtures.js';
import {
  IPTABLES_JUMPS,
  jumpRuleArgs,
  probability,
  renderIptables,
  renderIptablesPartial,
} from './iptables.js';
import { iptablesEndpointChain, iptablesServiceChains } from './names.js';

const node = { name: 'node-a', ip: '198.18.0.10', clusterCIDR: '198.18.16.0/20' };

/** The rules of one chain in one table, in order. */
function rules(text: string, table: 'filter' | 'nat', chain: string): string[] {
  const block = text.split(`*${table}\n`)[1]?.split('COMMIT')[0] ?? '';
  return block.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
}

function chainDeclared(text: string, table: 'filter' | 'nat', chain: string): boolean {
  const block = text.split(`*${table}\n`)[1]?.split('COMMIT')[0] ?? '';
  return block.split('\n').includes(`:${chain} - [0:0]`);
}

const svc = iptablesServiceChains('default/web:http', 'tcp');
const sep = (ip: string, port = 8080): string =>
  iptablesEndpointChain('default/web:http', 'tcp', `${ip}:${port}`);
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

describe('iptables rendering (kube-proxy iptables mode)', () => {
  it('renders a ClusterIP service exactly as kube-proxy does', () => {
    const text = renderIptables(
      [
        view({
          namespace: 'ns1',
          serviceName: 'svc1',
          portName: 'p80',
          clusterIP: '172.30.0.41',
          endpoints: [endpoint('10.180.0.1', 80)],
        }),
      ],
      { name: 'node1', ip: '192.168.0.2', clusterCIDR: '10.0.0.0/8' },
    ).text;
    assert.equal(
      text,
      [
        '*filter',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-EXTERNAL-SERVICES - [0:0]',
        ':KUBE-FORWARD - [0:0]',
        ':KUBE-NODEPORTS - [0:0]',
        ':KUBE-PROXY-FIREWALL - [0:0]',
        ':KUBE-FIREWALL - [0:0]',
        '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
        '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        'COMMIT',
        '*nat',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-NODEPORTS - [0:0]',
        ':KUBE-POSTROUTING - [0:0]',
        ':KUBE-MARK-MASQ - [0:0]',
        ':KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]',
        ':KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]',
        '-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN',
        '-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000',
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000',
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ',
        '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
        '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('spreads 3 endpoints with probabilities 1/3, 1/2, then unconditionally', () => {
    const text = renderIptables([web()], node).text;
    assert.deepEqual(rules(text, 'nat', svc.cluster), [
      `-A ${svc.cluster} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 198.19.0.10 --dport 80 ! -s 198.18.16.0/20 -j KUBE-MARK-MASQ`,
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.16.2:8080" -m statistic --mode random --probability 0.3333333333 -j ${sep('198.18.16.2')}`,
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.16.3:8080" -m statistic --mode random --probability 0.5000000000 -j ${sep('198.18.16.3')}`,
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.17.2:8080" -j ${sep('198.18.17.2')}`,
    ]);
    // Masquerade marking lives in the service chain, never in KUBE-SERVICES.
    assert.ok(rules(text, 'nat', 'KUBE-SERVICES').every((r) => !r.includes('KUBE-MARK-MASQ')));
    assert.deepEqual(rules(text, 'nat', sep('198.18.17.2')), [
      `-A ${sep('198.18.17.2')} -m comment --comment default/web:http -s 198.18.17.2 -j KUBE-MARK-MASQ`,
      `-A ${sep('198.18.17.2')} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 198.18.17.2:8080`,
    ]);
  });

  it('computes probabilities like Go %0.10f', () => {
    assert.equal(probability(3), '0.3333333333');
    assert.equal(probability(7), '0.1428571429');
    assert.equal(probability(2048), '0.0004882812');
  });

  it('REJECTs a service without endpoints in the filter table and writes no nat chains', () => {
    const r = renderIptables(
      [
        web({
          endpoints: [endpoint('198.18.16.2', 8080, { ready: false })],
          externalIPs: ['198.19.128.9'],
          nodePort: 30080,
        }),
      ],
      node,
    );
    assert.deepEqual(rules(r.text, 'filter', 'KUBE-SERVICES'), [
      '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 198.19.0.10 --dport 80 -j REJECT',
    ]);
    assert.deepEqual(rules(r.text, 'filter', 'KUBE-EXTERNAL-SERVICES'), [
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 198.19.128.9 --dport 80 -j REJECT',
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT',
    ]);
    assert.deepEqual(r.activeNatChains, []);
    assert.equal(rules(r.text, 'nat', 'KUBE-SERVICES').length, 1, 'only the nodeports tail call');
    assert.equal(rules(r.text, 'nat', 'KUBE-NODEPORTS').length, 0);
  });

  it('sends NodePort traffic through KUBE-EXT-*, which masquerades (eTP Cluster)', () => {
    const text = renderIptables([web({ nodePort: 30080 })], node).text;
    assert.deepEqual(rules(text, 'nat', 'KUBE-NODEPORTS'), [
      `-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j ${svc.external}`,
    ]);
    assert.deepEqual(rules(text, 'nat', svc.external), [
      `-A ${svc.external} -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ`,
      `-A ${svc.external} -j ${svc.cluster}`,
    ]);
    const services = rules(text, 'nat', 'KUBE-SERVICES');
    assert.match(services.at(-1) ?? '', /-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS$/);
  });

  it('captures LoadBalancer and external IPs into KUBE-EXT-*', () => {
    const text = renderIptables(
      [web({ nodePort: 30080, loadBalancerIPs: ['198.19.128.1'], externalIPs: ['198.19.128.7'] })],
      node,
    ).text;
    const services = rules(text, 'nat', 'KUBE-SERVICES');
    assert.ok(
      services.includes(
        `-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp -d 198.19.128.7 --dport 80 -j ${svc.external}`,
      ),
    );
    assert.ok(
      services.includes(
        `-A KUBE-SERVICES -m comment --comment "default/web:http loadbalancer IP" -m tcp -p tcp -d 198.19.128.1 --dport 80 -j ${svc.external}`,
      ),
    );
    assert.equal(rules(text, 'filter', 'KUBE-EXTERNAL-SERVICES').length, 0);
  });

  it('externalTrafficPolicy Local with a local endpoint: KUBE-SVL-*, no blanket masquerade', () => {
    const text = renderIptables(
      [
        web({
          nodePort: 30080,
          loadBalancerIPs: ['198.19.128.1'],
          externalTrafficPolicy: 'Local',
          endpoints: [
            endpoint('198.18.16.2', 8080, { isLocal: true }),
            endpoint('198.18.17.2', 8080),
          ],
        }),
      ],
      node,
    ).text;
    assert.deepEqual(rules(text, 'nat', svc.external), [
      `-A ${svc.external} -m comment --comment "pod traffic for default/web:http external destinations" -s 198.18.16.0/20 -j ${svc.cluster}`,
      `-A ${svc.external} -m comment --comment "masquerade LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
      `-A ${svc.external} -m comment --comment "route LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j ${svc.cluster}`,
      `-A ${svc.external} -j ${svc.local}`,
    ]);
    assert.deepEqual(rules(text, 'nat', svc.local), [
      `-A ${svc.local} -m comment --comment "default/web:http -> 198.18.16.2:8080" -j ${sep('198.18.16.2')}`,
    ]);
    assert.equal(rules(text, 'nat', svc.cluster).length, 3, 'masquerade + 2 endpoints');
  });

  it('externalTrafficPolicy Local without a local endpoint: DROP external, ClusterIP still works', () => {
    const r = renderIptables(
      [
        web({
          nodePort: 30080,
          loadBalancerIPs: ['198.19.128.1'],
          externalTrafficPolicy: 'Local',
          endpoints: [endpoint('198.18.17.2', 8080)],
        }),
      ],
      node,
    );
    assert.deepEqual(rules(r.text, 'filter', 'KUBE-EXTERNAL-SERVICES'), [
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -d 198.19.128.1 --dport 80 -j DROP',
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP',
    ]);
    // The EXT chain keeps only the short-circuit rules; nothing falls through to a policy chain.
    const ext = rules(r.text, 'nat', svc.external);
    assert.equal(ext.length, 3);
    assert.ok(ext.every((l) => !l.endsWith(`-j ${svc.local}`)));
    assert.equal(chainDeclared(r.text, 'nat', svc.local), false);
    assert.ok(chainDeclared(r.text, 'nat', svc.cluster));
    assert.equal(rules(r.text, 'filter', 'KUBE-SERVICES').length, 0);
  });

  it('internalTrafficPolicy Local without a local endpoint: DROP ClusterIP traffic', () => {
    const text = renderIptables(
      [web({ internalTrafficPolicy: 'Local', endpoints: [endpoint('198.18.17.2', 8080)] })],
      node,
    ).text;
    assert.deepEqual(rules(text, 'filter', 'KUBE-SERVICES'), [
      '-A KUBE-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -d 198.19.0.10 --dport 80 -j DROP',
    ]);
    const local = renderIptables(
      [
        web({
          internalTrafficPolicy: 'Local',
          endpoints: [endpoint('198.18.16.2', 8080, { isLocal: true })],
        }),
      ],
      node,
    ).text;
    assert.match(rules(local, 'nat', 'KUBE-SERVICES')[0] ?? '', new RegExp(`-j ${svc.local}$`));
    assert.match(
      rules(local, 'nat', svc.local)[0] ?? '',
      /! -s 198\.18\.16\.0\/20 -j KUBE-MARK-MASQ$/,
    );
  });

  it('implements ClientIP affinity with the recent module', () => {
    const text = renderIptables(
      [
        web({
          sessionAffinity: { timeoutSeconds: 600 },
          endpoints: [endpoint('198.18.16.2', 8080)],
        }),
      ],
      node,
    ).text;
    const chain = sep('198.18.16.2');
    assert.deepEqual(rules(text, 'nat', svc.cluster).slice(1), [
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.16.2:8080" -m recent --name ${chain} --rcheck --seconds 600 --reap -j ${chain}`,
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.16.2:8080" -j ${chain}`,
    ]);
    assert.equal(
      rules(text, 'nat', chain)[1],
      `-A ${chain} -m comment --comment default/web:http -m recent --name ${chain} --set -m tcp -p tcp -j DNAT --to-destination 198.18.16.2:8080`,
    );
  });

  it('uses serving terminating endpoints only when no endpoint is ready', () => {
    const text = renderIptables(
      [
        web({
          endpoints: [
            endpoint('198.18.16.2', 8080, { ready: false, serving: true, terminating: true }),
            endpoint('198.18.16.3', 8080, { ready: false, serving: false, terminating: true }),
          ],
        }),
      ],
      node,
    ).text;
    assert.deepEqual(rules(text, 'nat', svc.cluster).slice(1), [
      `-A ${svc.cluster} -m comment --comment "default/web:http -> 198.18.16.2:8080" -j ${sep('198.18.16.2')}`,
    ]);
  });

  it('gives each port of a multi-port service its own chains', () => {
    const r = renderIptables(
      [
        view({
          serviceName: 'api',
          portName: 'http',
          port: 80,
          endpoints: [endpoint('198.18.16.5', 8080)],
        }),
        view({
          serviceName: 'api',
          portName: 'grpc',
          port: 9090,
          endpoints: [endpoint('198.18.16.5', 9090)],
        }),
      ],
      node,
    );
    const http = iptablesServiceChains('default/api:http', 'tcp').cluster;
    const grpc = iptablesServiceChains('default/api:grpc', 'tcp').cluster;
    assert.notEqual(http, grpc);
    assert.ok(r.activeNatChains.includes(http) && r.activeNatChains.includes(grpc));
    assert.equal(r.activeNatChains.length, 4);
    const services = rules(r.text, 'nat', 'KUBE-SERVICES');
    assert.match(services[0] ?? '', /default\/api:grpc cluster IP.*--dport 9090/);
    assert.match(services[1] ?? '', /default\/api:http cluster IP.*--dport 80/);
  });

  it('masqueradeAll marks every ClusterIP connection', () => {
    const text = renderIptables([web()], node, { masqueradeAll: true }).text;
    assert.match(rules(text, 'nat', svc.cluster)[0] ?? '', /--dport 80 -j KUBE-MARK-MASQ$/);
  });

  it('drops per-endpoint comments above 1000 endpoints (large cluster mode)', () => {
    const r = renderIptables(syntheticViews(101, 10), node);
    assert.equal(r.largeClusterMode, true);
    assert.equal(r.counts.endpoints, 1010);
    const someSep = r.activeNatChains.find((c) => c.startsWith('KUBE-SEP-')) ?? '';
    assert.ok(rules(r.text, 'nat', someSep).every((l) => !l.includes('--comment')));
    assert.equal(renderIptables(syntheticViews(100, 10), node).largeClusterMode, false);
  });

  it('partial sync rewrites only the changed service and deletes stale chains', () => {
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
    const before = renderIptables([a, b, gone], node);
    const bNext = { ...b, endpoints: [endpoint('198.18.16.31', 80)] };
    const after = [a, bNext];
    const partial = renderIptablesPartial(after, node, {
      changedServices: changedServices([a, b, gone], after),
      existingNatChains: [...before.activeNatChains, 'KUBE-SERVICES', 'KUBE-MARK-MASQ', 'OTHER'],
    });
    const aChains = iptablesServiceChains('default/a', 'tcp');
    const bChains = iptablesServiceChains('default/b', 'tcp');
    const goneChains = iptablesServiceChains('default/gone', 'tcp');
    assert.equal(partial.full, false);
    // a did not change: referenced from KUBE-SERVICES, but its chains are not rewritten.
    assert.ok(rules(partial.text, 'nat', 'KUBE-SERVICES').some((l) => l.endsWith(aChains.cluster)));
    assert.equal(chainDeclared(partial.text, 'nat', aChains.cluster), false);
    assert.equal(rules(partial.text, 'nat', aChains.cluster).length, 0);
    // b changed: rewritten with its new endpoint.
    assert.ok(chainDeclared(partial.text, 'nat', bChains.cluster));
    assert.ok(partial.text.includes('--to-destination 198.18.16.31:80'));
    // Stale chains (b's old endpoint, the removed service) are flushed and deleted; foreign
    // and top-level chains are left alone.
    const oldSep = iptablesEndpointChain('default/b', 'tcp', '198.18.16.21:80');
    const goneSep = iptablesEndpointChain('default/gone', 'tcp', '198.18.16.22:80');
    assert.deepEqual(partial.deletedChains, [goneSep, oldSep, goneChains.cluster].sort());
    for (const c of partial.deletedChains) {
      assert.ok(chainDeclared(partial.text, 'nat', c));
      assert.ok(partial.text.includes(`\n-X ${c}\n`));
    }
    assert.ok(partial.activeNatChains.includes(aChains.cluster));
    // The filter table and the top-level nat chains are always rewritten whole.
    assert.ok(chainDeclared(partial.text, 'filter', 'KUBE-FORWARD'));
    assert.ok(chainDeclared(partial.text, 'nat', 'KUBE-POSTROUTING'));
  });

  it('lists the jumps kube-proxy ensures from the built-in chains', () => {
    assert.equal(IPTABLES_JUMPS.length, 14);
    const first = IPTABLES_JUMPS[0];
    assert.ok(first);
    assert.deepEqual(jumpRuleArgs(first), [
      '-m',
      'conntrack',
      '--ctstate',
      'NEW',
      '-m',
      'comment',
      '--comment',
      'kubernetes externally-visible service portals',
      '-j',
      'KUBE-EXTERNAL-SERVICES',
    ]);
    const kubelet = IPTABLES_JUMPS.at(-1);
    assert.ok(kubelet);
    assert.deepEqual(jumpRuleArgs(kubelet), ['-j', 'KUBE-FIREWALL']);
  });
});
