import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fabricLines, nodeLines, nodeSysctls, podHostLines, podLines } from './links.js';

describe('lab links', () => {
  it('creates every link inside a lab namespace, the peer straight into another one', () => {
    const lines = [
      ...fabricLines('198.18.0.1/24', 'sl-external'),
      ...podHostLines([{ hostVeth: 'p0', netns: 'sl-pod-0-0', ip: '198.18.16.2' }]),
    ];
    for (const line of lines.filter((l) => l.includes('type veth'))) {
      assert.match(line, /peer name \S+ netns sl-\S+$/);
    }
  });

  it('gives a pod a /32 and a default route via the link-local gateway', () => {
    assert.deepEqual(podLines('198.18.16.2').slice(2), [
      'addr add 198.18.16.2/32 dev eth0',
      'link set eth0 up',
      'route add 169.254.1.1 dev eth0 scope link',
      'route add default via 169.254.1.1 dev eth0',
    ]);
    assert.deepEqual(podHostLines([{ hostVeth: 'p7', netns: 'sl-pod-1-7', ip: '198.18.17.9' }]), [
      'link add p7 type veth peer name eth0 netns sl-pod-1-7',
      'ntable change name arp_cache dev p7 proxy_delay 0',
      'link set p7 up',
      'route add 198.18.17.9/32 dev p7 scope link',
    ]);
  });

  it('routes other nodes pod CIDRs via their fabric IPs; nodes forward and proxy-ARP', () => {
    assert.deepEqual(
      nodeLines('198.18.0.11/24', '198.18.0.1', [{ cidr: '198.18.16.0/24', via: '198.18.0.10' }]),
      [
        'link set lo up',
        'addr add 198.18.0.11/24 dev fab0',
        'link set fab0 up',
        'route add default via 198.18.0.1 dev fab0',
        'route replace 198.18.16.0/24 via 198.18.0.10',
      ],
    );
    const sysctls = nodeSysctls();
    assert.equal(sysctls['net.ipv4.ip_forward'], 1);
    assert.equal(sysctls['net.ipv4.conf.default.proxy_arp'], 1);
  });
});
