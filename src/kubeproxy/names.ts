/**
 * kube-proxy's chain and set names, computed exactly as it computes them so a rule dump from the
 * lab can be compared name for name with a real node's.
 *
 * iptables (pkg/proxy/iptables/proxier.go portProtoHash, servicePortEndpointChainName):
 *   PREFIX + first 16 chars of base32(sha256(servicePortName + protocol [+ endpoint]))
 * nftables (pkg/proxy/nftables/proxier.go hashAndTruncate, servicePortChainNameBase,
 * servicePortEndpointChainNameBase):
 *   PREFIX + first 8 chars of base32(sha256(name)) + "-" + name,
 *   name = "ns/svc/proto/port" or "ns/svc/proto/port__ip/port" (":" of IPv6 as ".").
 * Protocols are lower case in both ("tcp").
 */
import { createHash } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 with padding: Go's base32.StdEncoding.EncodeToString. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

function sha256Base32(input: string): string {
  return base32(createHash('sha256').update(input).digest());
}

/** portProtoHash: 16 base32 characters of sha256(servicePortName + protocol). */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return sha256Base32(servicePortName + protocol).slice(0, 16);
}

export const IPT_PREFIX = {
  cluster: 'KUBE-SVC-',
  local: 'KUBE-SVL-',
  firewall: 'KUBE-FW-',
  external: 'KUBE-EXT-',
  endpoint: 'KUBE-SEP-',
} as const;

/** Names of a service port's iptables chains (some exist only under some policies). */
export interface IptablesServiceChains {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function iptablesServiceChains(
  servicePortName: string,
  protocol: string,
): IptablesServiceChains {
  const hash = portProtoHash(servicePortName, protocol);
  return {
    cluster: IPT_PREFIX.cluster + hash,
    local: IPT_PREFIX.local + hash,
    external: IPT_PREFIX.external + hash,
    firewall: IPT_PREFIX.firewall + hash,
  };
}

/** KUBE-SEP-*: sha256(servicePortName + protocol + "ip:port"). */
export function iptablesEndpointChain(
  servicePortName: string,
  protocol: string,
  endpoint: string,
): string {
  return IPT_PREFIX.endpoint + sha256Base32(servicePortName + protocol + endpoint).slice(0, 16);
}

/** isServiceChainName: the chains a sync may delete when they are no longer used. */
export function isIptablesServiceChain(chain: string): boolean {
  return Object.values(IPT_PREFIX).some((prefix) => chain.startsWith(prefix));
}

/** knftables.NameLengthMax (256) minus the longest prefix (16). */
const NFT_BASE_MAX = 256 - 16;

export const NFT_PREFIX = {
  cluster: 'service-',
  local: 'local-',
  external: 'external-',
  endpoint: 'endpoint-',
  affinity: 'affinity-',
  firewall: 'firewall-',
} as const;

export function hashAndTruncate(name: string): string {
  const full = `${sha256Base32(name).slice(0, 8)}-${name}`;
  return full.length > NFT_BASE_MAX ? `${full.slice(0, NFT_BASE_MAX - 3)}...` : full;
}

export interface NftablesServiceChains {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function nftablesServiceChains(
  namespace: string,
  service: string,
  protocol: string,
  portName: string,
): NftablesServiceChains {
  const base = hashAndTruncate(`${namespace}/${service}/${protocol}/${portName}`);
  return {
    cluster: NFT_PREFIX.cluster + base,
    local: NFT_PREFIX.local + base,
    external: NFT_PREFIX.external + base,
    firewall: NFT_PREFIX.firewall + base,
  };
}

export interface NftablesEndpointNames {
  chain: string;
  affinitySet: string;
}

export function nftablesEndpointNames(
  namespace: string,
  service: string,
  protocol: string,
  portName: string,
  ip: string,
  port: number,
): NftablesEndpointNames {
  const safeIP = ip.replaceAll(':', '.');
  const base = hashAndTruncate(
    `${namespace}/${service}/${protocol}/${portName}__${safeIP}/${port}`,
  );
  return { chain: NFT_PREFIX.endpoint + base, affinitySet: NFT_PREFIX.affinity + base };
}

/** Service and endpoint chains all contain a "/"; kube-proxy's fixed chains never do. */
export function isNftablesServiceChain(chain: string): boolean {
  return chain.includes('/');
}

export function isNftablesAffinitySet(set: string): boolean {
  return set.startsWith(NFT_PREFIX.affinity);
}
