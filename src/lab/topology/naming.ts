/**
 * The lab's naming scheme (pure). Everything the lab creates carries the `sl-` prefix, so it is
 * recognisably ours and a sweep can find what a crashed run left behind:
 *
 *   network namespaces   sl-fabric, sl-external, sl-node-<node name>, sl-pod-<node index>-<serial>
 *   cgroups              <cgroup2>/sluice/lab/<node name>/<pod netns>, <cgroup2>/sluice/lab/external
 *   BPF pins             /sys/fs/bpf/sluice/lab/
 *   interfaces           fabric: br0 (bridge), n-<node index> and ext (bridge ports);
 *                        node: fab0 (uplink), p<serial> (one per pod); pod and external: eth0
 *
 * A lab can be given a name (tests do, so concurrent runs cannot collide): lab `t42` is
 * `sl-t42-fabric`, `sl-t42-node-a`, ..., cgroup `sluice/lab-t42`, pins `sluice/lab-t42`.
 * Interface names only need to be unique inside their namespace, so they carry no lab name.
 */
import { LabError } from './errors.js';

export const BRIDGE = 'br0';
export const NODE_UPLINK = 'fab0';
export const EXTERNAL_PORT = 'ext';
export const POD_DEV = 'eth0';
export const EXTERNAL_DEV = 'eth0';
/** The pods' default gateway: link-local, answered by the node's veth with proxy ARP (as Calico). */
export const POD_GATEWAY = '169.254.1.1';
export const BPFFS_ROOT = '/sys/fs/bpf';

const RESERVED = new Set(['fabric', 'external', 'node', 'pod']);

export interface LabNames {
  /** '' for the default lab. */
  labName: string;
  /** Prefix of every network namespace: `sl-` or `sl-<lab>-`. */
  prefix: string;
  /** Directory name under <cgroup2>/sluice/ and /sys/fs/bpf/sluice/: `lab` or `lab-<lab>`. */
  dirName: string;
}

export function labNames(labName = ''): LabNames {
  if (labName !== '' && (!/^[a-z0-9]{1,12}$/.test(labName) || RESERVED.has(labName))) {
    throw new LabError(
      `bad lab name '${labName}': use 1-12 of [a-z0-9], not ${[...RESERVED].join('/')}`,
    );
  }
  return {
    labName,
    prefix: labName === '' ? 'sl-' : `sl-${labName}-`,
    dirName: labName === '' ? 'lab' : `lab-${labName}`,
  };
}

export const fabricNetns = (n: LabNames): string => `${n.prefix}fabric`;
export const externalNetns = (n: LabNames): string => `${n.prefix}external`;
export const nodeNetns = (n: LabNames, node: string): string => `${n.prefix}node-${node}`;
export const podNetns = (n: LabNames, nodeIndex: number, serial: number): string =>
  `${n.prefix}pod-${nodeIndex}-${serial}`;
/** The node's port on the fabric bridge. */
export const fabricPort = (nodeIndex: number): string => `n-${nodeIndex}`;
/** The node's end of a pod's veth pair. */
export const podHostVeth = (serial: number): string => `p${serial}`;

/** Whether a network namespace name is one this lab creates (for the sweep after a crash). */
export function isLabNetns(n: LabNames, name: string): boolean {
  if (!name.startsWith(n.prefix)) return false;
  const rest = name.slice(n.prefix.length);
  return (
    rest === 'fabric' || rest === 'external' || /^node-.+$/.test(rest) || /^pod-\d+-\d+$/.test(rest)
  );
}

/** Node names become namespace and cgroup names: Kubernetes' DNS-1123 subdomain rules. */
export function checkNodeName(name: string): void {
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(name) || name === 'external') {
    throw new LabError(`bad node name '${name}': lower-case DNS name of at most 63 characters`);
  }
}
