/** What both kube-proxy baselines need to know about the node they program. */
export interface KubeProxyNode {
  /** Node name: endpoints with this nodeName are local (the view already says so per endpoint). */
  name: string;
  /** The node's primary IP (nftables' default --nodeport-addresses=primary uses it). */
  ip: string;
  /**
   * The whole cluster's pod range (--cluster-cidr, detect-local-mode=ClusterCIDR). Traffic to a
   * ClusterIP from outside it is masqueraded; eTP=Local short-circuits traffic from inside it.
   * Empty: no local-traffic detector, as kube-proxy without --cluster-cidr.
   */
  clusterCIDR: string;
}

/** kube-proxy's default --iptables-masquerade-bit / --nftables-masquerade-bit. */
export const DEFAULT_MASQUERADE_BIT = 14;

/** fmt.Sprintf("%#08x", 1<<bit): eight hex digits after "0x", e.g. "0x00004000". */
export function masqueradeMark(bit: number = DEFAULT_MASQUERADE_BIT): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) {
    throw new RangeError(`masquerade bit must be an integer in 0..31, got ${bit}`);
  }
  return `0x${(2 ** bit).toString(16).padStart(8, '0')}`;
}
