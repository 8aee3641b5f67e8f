/** The model's public API: plain data and pure functions over the cluster state. */
export * from './types.js';
export * from './addressing.js';
export { MODEL_ERROR_CODES, ManifestError, ModelError, formatProblem } from './errors.js';
export type { ManifestProblem, ModelErrorCode } from './errors.js';
export {
  listManifestFiles,
  loadManifests,
  parseManifestText,
  parseManifests,
} from './manifests.js';
export type { ManifestDoc, ManifestSource } from './manifests.js';
export {
  CLUSTER_SCOPED_KINDS,
  SUPPORTED_KINDS,
  checkManifests,
  isSupportedKind,
  validateManifests,
} from './validate.js';
export type { SupportedKind, ValidDoc, ValidationContext } from './validate.js';
export {
  ANNOTATIONS,
  DEFAULT_AFFINITY_TIMEOUT_SECONDS,
  ENDPOINTSLICE_CONTROLLER,
  MANAGED_BY_LABEL,
  SERVICE_NAME_LABEL,
  normalizeObject,
} from './normalize.js';
export type { NodeInput, NormalizedObject, PodInput } from './normalize.js';
export {
  HOSTNAME_LABEL,
  POD_TEMPLATE_HASH_LABEL,
  applyObjects,
  defaultNodes,
  deleteObjects,
  emptyState,
  refsOf,
  replicaName,
  setPodConditions,
  templateHash,
  toManifestDocs,
} from './state.js';
export type { ApplyInput, ApplyOptions, ObjectRef } from './state.js';
export {
  DEFAULT_MAX_ENDPOINTS_PER_SLICE,
  HEADLESS_LABEL,
  endpointSlicesForService,
  reconcileEndpointSlices,
  resolveTargetPort,
} from './endpointslices.js';
export type { EndpointSliceOptions } from './endpointslices.js';
export {
  categorizeEndpoints,
  compareIpPort,
  endpointString,
  externalPolicyLocal,
  externallyAccessible,
  internalPolicyLocal,
  compareViews,
  endpointSlicesByService,
  proxyView,
  servicePortName,
  serviceViews,
  sortedEndpoints,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from './proxy-view.js';
export type { CategorizedEndpoints } from './proxy-view.js';
export { STATE_FORMAT_VERSION, stateFromJSON, stateToJSON } from './serialize.js';
export type { ClusterStateJSON } from './serialize.js';
export {
  checkLabelSelector,
  isEmptySelector,
  matchesLabels,
  matchesRequirement,
  matchesSelector,
} from './selectors.js';
export type { LabelSelector, LabelSelectorRequirement, SelectorOperator } from './selectors.js';
export { checkCiliumNetworkPolicy, ciliumNetworkPolicySchema } from './cilium.js';
export type {
  CiliumEgressRule,
  CiliumEndpointSelector,
  CiliumHttpRule,
  CiliumIngressRule,
  CiliumL7Rules,
  CiliumNetworkPolicyObject,
  CiliumPortRule,
  CiliumRule,
} from './cilium.js';
export { splitCommandLine } from './command.js';
export {
  cidrContains,
  cidrsOverlap,
  cidrWithin,
  formatCidr,
  formatIPv4,
  nthSubnet,
  parseCidr,
  parseIPv4,
} from './ip.js';
export type { Cidr } from './ip.js';
export * from './traffic-optimization.js';
