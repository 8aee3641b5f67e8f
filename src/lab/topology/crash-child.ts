/**
 * The crash test's victim (crash.test.ts): builds a lab as a real run would, announcing its
 * progress on stdout, and is killed with SIGKILL by the test at some point. Never imported.
 *
 *   node crash-child.js STATE_DIR LAB_NAME
 */
import { spawn } from 'node:child_process';
import { startWorkload } from '../workloads/workloads.js';
import { LabTopology } from './topology.js';
import { testNode, testPod } from './testkit.js';

const [stateDir, labName] = process.argv.slice(2);
const lab = await LabTopology.create({ stateDir, labName });
for (const i of [0, 1]) await lab.addNode(testNode(i));
// An agent-like process per node, recorded.
for (const i of [0, 1]) lab.startProcess({ node: `node-${i}` }, ['sleep', '1000']);
console.log('nodes');
const pods = [0, 1].flatMap((i) => Array.from({ length: 20 }, (_, k) => testPod(i, k)));
await lab.addPods(pods);
for (const pod of pods) startWorkload(lab, pod);
// A stray: inside a lab namespace, but neither recorded nor in a lab cgroup.
spawn('ip', ['netns', 'exec', lab.pod('default/pod-0-0').netns, 'sleep', '1000'], {
  detached: true,
  stdio: 'ignore',
}).unref();
console.log('ready');
setInterval(() => {}, 1000);
