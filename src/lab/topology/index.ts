/** The lab's topology: namespaces, links, cgroups and processes, recorded for clean removal. */
export { LabTopology } from './topology.js';
export type { LabOptions, StartOptions, Target } from './topology.js';
export { destroyLab } from './destroy.js';
export type { DestroyOptions, DestroyReport } from './destroy.js';
export { LabError } from './errors.js';
export type { RunOptions, RunResult } from './exec.js';
export type { LabState, NodeRecord, PodRecord, ProcessRecord } from './state-file.js';
export { DEFAULT_STATE_DIR, STATE_DIR_ENV, resolveStateDir } from './state-file.js';
export { labNames, isLabNetns, POD_GATEWAY } from './naming.js';
