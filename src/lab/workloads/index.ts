/** Pod workloads: echo server, redis-server or the pod's command, and readiness. */
export {
  echoServerPath,
  isRedisImage,
  planWorkload,
  startWorkload,
  stopWorkload,
} from './workloads.js';
export type { WorkloadSpec } from './workloads.js';
export { notListening, servingPorts, waitListening } from './readiness.js';
export type { PortRef, WaitOptions } from './readiness.js';
