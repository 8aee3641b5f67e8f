/**
 * The normalized cluster state: Kubernetes objects after parsing, validation and defaulting,
 * as plain data. Sources (manifests directory, Kubernetes API) produce it; the lab, the
 * kube-proxy baselines and the sluice agent consume it. No I/O here.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** namespace/name: how every namespaced object is keyed. */
export type ObjectKey = string;
export const objectKey = (namespace: string, name: string): ObjectKey => `${namespace}/${name}`;

export interface ObjectMeta {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface Node {
  name: string;
  labels: Record<string, string>;
  /** The node's address on the fabric (InternalIP). */
  ip: string;
  /** The node's pod CIDR, e.g. 198.18.16.0/24. */
  podCIDR: string;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

export interface Container {
  name: string;
  image: string;
  ports: ContainerPort[];
  /** From the sluice.io/command annotation or the container's command+args. */
  command?: string[];
  /** The container's args when it has no command: arguments for the image's own program. */
  args?: string[];
}

export interface PodConditions {
  ready: boolean;
  /** Set by graceful termination (deletionTimestamp): the pod is terminating. */
  terminating: boolean;
}

export interface Pod extends ObjectMeta {
  uid: string;
  nodeName: string;
  /** Assigned by the lab's IPAM from the node's pod CIDR. */
  ip: string;
  containers: Container[];
  conditions: PodConditions;
  /** The Deployment that owns it, if any (ownerReference). */
  owner?: { kind: 'Deployment'; name: string };
  /** A virtual pod has an address but no process (control-plane scale tests). */
  virtual: boolean;
}

export interface Deployment extends ObjectMeta {
  replicas: number;
  selector: Record<string, string>;
  template: {
    labels: Record<string, string>;
    annotations: Record<string, string>;
    containers: Container[];
    nodeName?: string;
  };
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type TrafficPolicy = 'Cluster' | 'Local';

export interface ServicePort {
  name: string; // '' when the service has a single unnamed port
  protocol: Protocol;
  port: number;
  /** A number, or the name of a container port resolved per pod. */
  targetPort: number | string;
  /** Set for NodePort and LoadBalancer services (allocated when not given). */
  nodePort?: number;
}

export interface Service extends ObjectMeta {
  type: ServiceType;
  /** The allocated ClusterIP; 'None' for headless services; '' for ExternalName services. */
  clusterIP: string;
  ports: ServicePort[];
  /** undefined: selector-less (EndpointSlices come from the user). */
  selector?: Record<string, string>;
  externalIPs: string[];
  /** Ingress address from the lab's load-balancer pool (type LoadBalancer). */
  loadBalancerIP?: string;
  /** spec.allocateLoadBalancerNodePorts; undefined means true (the Kubernetes default). */
  allocateLoadBalancerNodePorts?: boolean;
  /** spec.externalName, for type ExternalName (a DNS name; no proxying). */
  externalName?: string;
  sessionAffinity: 'None' | 'ClientIP';
  /** sessionAffinityConfig.clientIP.timeoutSeconds (default 10800). */
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  /** publishNotReadyAddresses */
  publishNotReadyAddresses: boolean;
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  nodeName?: string;
  /** The pod behind the endpoint, namespace/name. */
  targetRef?: ObjectKey;
}

export interface EndpointSlicePort {
  name: string;
  protocol: Protocol;
  port: number;
}

export interface EndpointSlice extends ObjectMeta {
  /** kubernetes.io/service-name label */
  serviceName: string;
  addressType: 'IPv4' | 'IPv6';
  ports: EndpointSlicePort[];
  endpoints: Endpoint[];
  /** true when computed by the EndpointSlice controller, false when user-supplied. */
  managed: boolean;
}

/**
 * NetworkPolicy (networking.k8s.io/v1), CiliumNetworkPolicy (cilium.io/v2) or
 * TrafficOptimization (sluice.io/v1alpha1, see traffic-optimization.ts), stored as given.
 */
export interface Policy extends ObjectMeta {
  kind: 'NetworkPolicy' | 'CiliumNetworkPolicy' | 'TrafficOptimization';
  spec: unknown;
  /** CiliumNetworkPolicy only: its `specs` list, when given (each entry a rule like spec). */
  specs?: unknown[];
}

export interface Namespace {
  name: string;
  labels: Record<string, string>;
  /** Absent for namespaces created implicitly. `sluice.io/accelerate: "true"` opts in. */
  annotations?: Record<string, string>;
}

export interface ClusterState {
  namespaces: Map<string, Namespace>;
  nodes: Map<string, Node>;
  deployments: Map<ObjectKey, Deployment>;
  pods: Map<ObjectKey, Pod>;
  services: Map<ObjectKey, Service>;
  endpointSlices: Map<ObjectKey, EndpointSlice>;
  policies: Map<ObjectKey, Policy>;
}

/**
 * What a proxy (kube-proxy's iptables or nftables mode, or the sluice agent) needs for one
 * service port on one node: the service's frontends and its endpoints with their conditions.
 * This mirrors kube-proxy's ServicePort + Endpoint view (pkg/proxy), computed by
 * proxy-view.ts from the cluster state.
 */
export interface ServicePortView {
  /**
   * kube-proxy's ServicePortName.String(): "namespace/name:portName", or "namespace/name" when
   * the port is unnamed, e.g. "default/web:http", "default/redis". Chain names hash this.
   */
  id: string;
  namespace: string;
  serviceName: string;
  portName: string;
  protocol: Protocol;
  clusterIP: string;
  port: number;
  nodePort?: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  sessionAffinity: { timeoutSeconds: number } | null;
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  /** Every endpoint of the port (all slices merged), target port resolved. */
  endpoints: EndpointView[];
}

export interface EndpointView {
  ip: string;
  port: number;
  nodeName?: string;
  /** On the node the view is computed for. */
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** namespace/name of the pod, for probes and reports. */
  pod?: ObjectKey;
}
