/**
 * The lab's address plan. Everything comes from the benchmarking range 198.18.0.0/15, which is
 * never routed outside, so a leaked packet is recognisably ours and goes nowhere (DESIGN.md).
 */
export interface Addressing {
  /** Fabric subnet: node i is .10+i, the external client .2. */
  fabricCIDR: string;
  /** Node i gets the i-th /24 of this range as its pod CIDR. */
  podCIDRBase: string;
  /** ClusterIPs are allocated from here. */
  serviceCIDR: string;
  /** LoadBalancer ingress addresses are allocated from here. */
  loadBalancerPool: string;
  nodePortRange: { min: number; max: number };
}

export const DEFAULT_ADDRESSING: Addressing = {
  fabricCIDR: '198.18.0.0/24',
  podCIDRBase: '198.18.16.0/20',
  serviceCIDR: '198.19.0.0/17',
  loadBalancerPool: '198.19.128.0/24',
  nodePortRange: { min: 30000, max: 32767 },
};
