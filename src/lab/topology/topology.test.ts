import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { waitListening } from '../workloads/readiness.js';
import { startWorkload } from '../workloads/workloads.js';
import { cgroupPids } from './cgroups.js';
import { destroyLab } from './destroy.js';
import { listNetns } from './netns.js';
import { readState } from './state-file.js';
import { LabTopology } from './topology.js';
import { CLIENT_SCRIPT, requireRoot, testLab, testNode, testPod, withLab } from './testkit.js';

const ECHO_PORTS = [
  { port: 7, protocol: 'TCP' as const },
  { port: 7, protocol: 'UDP' as const },
  { port: 80, protocol: 'TCP' as const },
];

describe('lab topology (root)', () => {
  it('wires 2 nodes x 2 pods and an external client: pod-to-pod across nodes, no proxy', async () => {
    await withLab(async (lab) => {
      for (const i of [0, 1]) await lab.addNode(testNode(i));
      const pods = [testPod(0, 0), testPod(0, 1), testPod(1, 0), testPod(1, 1)];
      const records = await lab.addPods(pods);
      assert.deepEqual(
        records.map((r) => [r.key, r.netns, r.hostVeth, r.ip]),
        [
          ['default/pod-0-0', `${lab.names.prefix}pod-0-0`, 'p0', '198.18.16.10'],
          ['default/pod-0-1', `${lab.names.prefix}pod-0-1`, 'p1', '198.18.16.11'],
          ['default/pod-1-0', `${lab.names.prefix}pod-1-0`, 'p0', '198.18.17.10'],
          ['default/pod-1-1', `${lab.names.prefix}pod-1-1`, 'p1', '198.18.17.11'],
        ],
      );
      for (const pod of pods) startWorkload(lab, pod);
      for (const r of records) await waitListening(lab, r.key, ECHO_PORTS);

      // ICMP and the echo server of a pod on the other node, and on the same node.
      await lab.execInPod('default/pod-0-0', ['ping', '-c1', '-W1', '198.18.17.11']);
      const whoami = async (from: string, ip: string): Promise<unknown> =>
        JSON.parse((await lab.execInPod(from, ['node', CLIENT_SCRIPT, 'whoami', ip, '7'])).stdout);
      assert.deepEqual(await whoami('default/pod-0-0', '198.18.17.11'), { name: 'pod-1-1' });
      assert.deepEqual(await whoami('default/pod-1-0', '198.18.16.11'), { name: 'pod-0-1' });
      assert.deepEqual(await whoami('default/pod-0-0', '198.18.16.11'), { name: 'pod-0-1' });
      // The server sees the client pod's own address: no NAT on the way.
      const clientip = await lab.execInPod('default/pod-1-0', [
        'node',
        CLIENT_SCRIPT,
        'udp',
        '198.18.16.10',
        '7',
        'clientip',
      ]);
      assert.match(clientip.stdout, /"reply":"198\.18\.17\.10:\d+"/);

      // The external client reaches node IPs, nodes reach pods, pods reach nodes.
      await lab.execExternal(['ping', '-c1', '-W1', '198.18.0.11']);
      await lab.execInNode('node-1', ['ping', '-c1', '-W1', '198.18.16.10']);
      await lab.execInPod('default/pod-1-1', ['ping', '-c1', '-W1', '198.18.0.10']);
      // External clients have no route to pods' or services' addresses, only to the LB pool.
      const routes = (await lab.execExternal(['ip', 'route'])).stdout;
      assert.match(routes, /^198\.19\.128\.0\/24 via 198\.18\.0\.10 /m);
      assert.doesNotMatch(routes, /^default/m);
      const noRoute = await lab.execExternal(['ping', '-c1', '-W1', '198.18.16.10'], {
        allowFailure: true,
      });
      assert.notEqual(noRoute.code, 0);

      // Commands run in the pod's cgroup; workloads too.
      const cg = (await lab.execInPod('default/pod-0-1', ['cat', '/proc/self/cgroup'])).stdout;
      assert.match(
        cg,
        new RegExp(`^0::/sluice/${lab.names.dirName}/node-0/${lab.names.prefix}pod-0-1$`, 'm'),
      );
      const serverPid = lab.liveProcesses('default/pod-0-1')[0]?.pid;
      assert.ok(
        serverPid !== undefined &&
          cgroupPids(lab.pod('default/pod-0-1').cgroup).includes(serverPid),
      );

      // Removing a pod takes its namespace, cgroup and process with it.
      await lab.removePod('default/pod-0-1');
      assert.ok(!(await listNetns()).includes(`${lab.names.prefix}pod-0-1`));
      assert.equal(lab.liveProcesses('default/pod-0-1').length, 0);
      assert.equal(readState(lab.stateDir)?.pods['default/pod-0-1'], undefined);
      const gone = await lab.execInPod('default/pod-1-0', ['ping', '-c1', '-W1', '198.18.16.11'], {
        allowFailure: true,
      });
      assert.notEqual(gone.code, 0);
      // Serials are not reused: the next pod on node-0 gets a new namespace name.
      const [again] = await lab.addPods([testPod(0, 1)]);
      assert.equal(again?.netns, `${lab.names.prefix}pod-0-2`);
      await lab.execInPod('default/pod-1-0', ['ping', '-c1', '-W1', '198.18.16.11']);
    });
  });

  it('rejects pods outside their node, duplicates, unknown nodes, and skips virtual pods', async () => {
    await withLab(async (lab) => {
      await lab.addNode(testNode(0));
      await assert.rejects(
        lab.addPods([testPod(0, 0, { ip: '198.18.17.3' })]),
        /outside node node-0/,
      );
      await assert.rejects(lab.addPods([testPod(1, 0)]), /no node 'node-1'/);
      assert.deepEqual(await lab.addPods([testPod(0, 0, { virtual: true })]), []);
      await lab.addPods([testPod(0, 0)]);
      await assert.rejects(lab.addPods([testPod(0, 0)]), /already exists/);
      await assert.rejects(lab.addPods([testPod(0, 1, { ip: '198.18.16.10' })]), /already in use/);
      await assert.rejects(lab.addNode(testNode(0)), /same name/);
    });
  });

  it('refuses a second lab in the same state directory; destroy is idempotent', async () => {
    requireRoot();
    const { labName, stateDir } = testLab();
    await withLab(async (lab) => {
      await assert.rejects(LabTopology.create({ stateDir: lab.stateDir }), /already recorded/);
    });
    // Nothing there at all: twice, fine.
    for (let i = 0; i < 2; i++) {
      const report = await destroyLab({ labName, stateDir });
      assert.deepEqual(report, {
        recorded: false,
        processes: 0,
        netns: [],
        cgroups: 0,
        pins: false,
      });
    }
  });

  it('logs each workload to a file under the state directory', async () => {
    await withLab(async (lab) => {
      await lab.addNode(testNode(0));
      const pod = testPod(0, 0);
      await lab.addPods([pod]);
      const [proc] = startWorkload(lab, pod);
      await waitListening(lab, 'default/pod-0-0', ECHO_PORTS);
      const log = proc?.log ?? '';
      assert.ok(log.startsWith(lab.stateDir));
      assert.match(readFileSync(log, 'utf8'), /echo_server pod-0-0: listening on 3 port/);
    });
  });
});
