/**
 * The `ip` commands that wire the lab (pure: each function returns the lines of one
 * `ip -batch`, to run inside the namespace its comment names). Every link is created inside a
 * lab namespace, its peer placed straight into another lab namespace: nothing ever appears in
 * the machine's root namespace.
 *
 *   sl-external          sl-fabric (br0 = gateway, forwards nothing)        sl-node-<name>
 *   eth0 .2  ───────  ext ─┤                    ├─ n-<i> ─────────  fab0 .10+i
 *                                                                     p<serial> ──── eth0  sl-pod-<i>-<serial>
 *
 * Pods get their IP as a /32 on eth0 and a default route via 169.254.1.1, which the node's
 * p<serial> answers with proxy ARP (Calico's scheme); the node routes each pod's /32 to its veth
 * and each other node's pod CIDR via that node's fabric IP, so pod-to-pod works across nodes
 * without any proxy. A ClusterIP follows the pod's default route to its node, where the proxy
 * translates it.
 */
import {
  BRIDGE,
  EXTERNAL_DEV,
  EXTERNAL_PORT,
  NODE_UPLINK,
  POD_DEV,
  POD_GATEWAY,
} from './naming.js';

/** In the fabric namespace: the bridge (addressed: the nodes' gateway) and the external's port. */
export function fabricLines(gatewayCidr: string, externalNetns: string): string[] {
  return [
    'link set lo up',
    `link add ${BRIDGE} type bridge stp_state 0 mcast_snooping 0`,
    `addr add ${gatewayCidr} dev ${BRIDGE}`,
    `link set ${BRIDGE} up`,
    `link add ${EXTERNAL_PORT} type veth peer name ${EXTERNAL_DEV} netns ${externalNetns}`,
    `link set ${EXTERNAL_PORT} master ${BRIDGE}`,
    `link set ${EXTERNAL_PORT} up`,
  ];
}

/** In the external namespace: its address on the fabric. */
export function externalLines(ipCidr: string): string[] {
  return [
    'link set lo up',
    `addr add ${ipCidr} dev ${EXTERNAL_DEV}`,
    `link set ${EXTERNAL_DEV} up`,
  ];
}

/** In the fabric namespace: a node's port on the bridge, its peer the node's uplink. */
export function nodeUplinkLines(port: string, nodeNetns: string): string[] {
  return [
    `link add ${port} type veth peer name ${NODE_UPLINK} netns ${nodeNetns}`,
    `link set ${port} master ${BRIDGE}`,
    `link set ${port} up`,
  ];
}

export interface Route {
  cidr: string;
  via: string;
}

/** In a node namespace: its fabric address, the default route to the gateway, routes to peers. */
export function nodeLines(ipCidr: string, gateway: string, peerRoutes: readonly Route[]): string[] {
  return [
    'link set lo up',
    `addr add ${ipCidr} dev ${NODE_UPLINK}`,
    `link set ${NODE_UPLINK} up`,
    `route add default via ${gateway} dev ${NODE_UPLINK}`,
    ...peerRoutes.map((r) => routeLine(r)),
  ];
}

export function routeLine(route: Route): string {
  return `route replace ${route.cidr} via ${route.via}`;
}

export interface PodLink {
  hostVeth: string;
  netns: string;
  ip: string;
}

/** In a node namespace: one veth per pod (peer straight into the pod as eth0), /32 routes. */
export function podHostLines(pods: readonly PodLink[]): string[] {
  return pods.flatMap((p) => [
    `link add ${p.hostVeth} type veth peer name ${POD_DEV} netns ${p.netns}`,
    // Proxy ARP answers after a random delay of up to 0.8 s unless proxy_delay is 0.
    `ntable change name arp_cache dev ${p.hostVeth} proxy_delay 0`,
    `link set ${p.hostVeth} up`,
    `route add ${p.ip}/32 dev ${p.hostVeth} scope link`,
  ]);
}

/** In a pod namespace: its /32 and the default route via the link-local gateway. */
export function podLines(ip: string): string[] {
  return [
    'link set lo up',
    // No IPv6 link-local address: no DAD, no router solicitations in captures.
    `link set ${POD_DEV} addrgenmode none`,
    `addr add ${ip}/32 dev ${POD_DEV}`,
    `link set ${POD_DEV} up`,
    `route add ${POD_GATEWAY} dev ${POD_DEV} scope link`,
    `route add default via ${POD_GATEWAY} dev ${POD_DEV}`,
  ];
}

/**
 * Sysctls of a node namespace, set before its pods' veths exist so they inherit the defaults:
 * forwarding on, proxy ARP on every pod veth (not on fab0), no reverse-path
 * filter (the proxies' NAT makes asymmetric paths), no IPv6.
 */
export function nodeSysctls(): Record<string, string | number> {
  return {
    'net.ipv4.ip_forward': 1,
    'net.ipv4.conf.all.rp_filter': 0,
    'net.ipv4.conf.default.rp_filter': 0,
    [`net.ipv4.conf.${NODE_UPLINK}.rp_filter`]: 0,
    'net.ipv4.conf.default.proxy_arp': 1,
    // Writing a default also changes existing devices not set explicitly: keep fab0 plain.
    [`net.ipv4.conf.${NODE_UPLINK}.proxy_arp`]: 0,
    'net.ipv6.conf.all.disable_ipv6': 1,
    'net.ipv6.conf.default.disable_ipv6': 1,
    // A ClusterIP with no endpoint is rejected after routing out fab0, the way the client came
    // in: an ICMP redirect sent first would use up the ICMP rate limit for that client, and the
    // REJECT's port unreachable would never reach it (a timeout instead of ECONNREFUSED).
    'net.ipv4.conf.all.send_redirects': 0,
    'net.ipv4.conf.default.send_redirects': 0,
    [`net.ipv4.conf.${NODE_UPLINK}.send_redirects`]: 0,
  };
}

/** The fabric and the external namespace forward nothing and speak no IPv6. */
export function quietSysctls(): Record<string, string | number> {
  return {
    'net.ipv4.ip_forward': 0,
    'net.ipv6.conf.all.disable_ipv6': 1,
    'net.ipv6.conf.default.disable_ipv6': 1,
  };
}
