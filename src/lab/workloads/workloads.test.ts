import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testNode, testPod, withLab } from '../topology/testkit.js';
import { servingPorts, waitListening } from './readiness.js';
import { isRedisImage, planWorkload, startWorkload, stopWorkload } from './workloads.js';

describe('workload plan', () => {
  it('serves every TCP and UDP port with the echo server, http* names as HTTP', () => {
    const pod = testPod(0, 0, {
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/e2e-test-images/agnhost:2.47',
          ports: [
            { name: 'http-alt', containerPort: 8080, protocol: 'TCP' },
            { containerPort: 9000, protocol: 'TCP' },
            { name: 'dns', containerPort: 53, protocol: 'UDP' },
            { name: 'sctp', containerPort: 99, protocol: 'SCTP' },
          ],
        },
        { name: 'sidecar', image: 'busybox', ports: [] },
      ],
    });
    assert.deepEqual(planWorkload(pod, '/bin/echo_server'), [
      {
        container: 'app',
        kind: 'echo',
        argv: [
          '/bin/echo_server',
          '--name',
          'pod-0-0',
          '--http',
          '8080',
          '--tcp',
          '9000',
          '--udp',
          '53',
        ],
        ports: [
          { port: 8080, protocol: 'TCP' },
          { port: 9000, protocol: 'TCP' },
          { port: 53, protocol: 'UDP' },
        ],
      },
    ]);
  });

  it('runs redis-server for redis images and the command when one is given', () => {
    for (const image of [
      'redis',
      'redis:7.2',
      'docker.io/library/redis@sha256:ab',
      'bitnami/redis-cluster',
    ]) {
      assert.ok(isRedisImage(image), image);
    }
    for (const image of ['nginx', 'myredis', 'redisproxy/../nginx'])
      assert.ok(!isRedisImage(image), image);
    const redis = testPod(0, 0, { containers: [{ name: 'db', image: 'redis:7', ports: [] }] });
    assert.deepEqual(planWorkload(redis)[0]?.argv.slice(0, 5), [
      'redis-server',
      '--port',
      '6379',
      '--bind',
      '0.0.0.0',
    ]);
    const custom = testPod(0, 0, {
      containers: [
        {
          name: 'x',
          image: 'redis',
          command: ['sleep', '10'],
          ports: [{ containerPort: 1, protocol: 'TCP' }],
        },
      ],
    });
    assert.deepEqual(planWorkload(custom), [
      {
        container: 'x',
        kind: 'command',
        argv: ['sleep', '10'],
        ports: [{ port: 1, protocol: 'TCP' }],
      },
    ]);
    assert.deepEqual(planWorkload({ ...custom, virtual: true }), []);
  });

  it('reads listening sockets from /proc/net tables', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 0A1012C6:D431 0A1012C6:0007 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
    ].join('\n');
    assert.deepEqual([...servingPorts(tcp, 'TCP')], [80]);
    const udp = [
      '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
      '  1: 00000000:0007 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0 0',
      '  2: 0A1012C6:9C40 0B1012C6:0007 01 00000000:00000000 00:00000000 00000000     0        0 4 2 0 0',
    ].join('\n');
    assert.deepEqual([...servingPorts(udp, 'UDP')], [7]);
  });
});

describe('workloads in lab pods (root)', () => {
  it('runs a real redis-server for a redis pod', async () => {
    await withLab(async (lab) => {
      await lab.addNode(testNode(0));
      const redis = testPod(0, 0, {
        containers: [
          { name: 'redis', image: 'redis:7', ports: [{ containerPort: 6379, protocol: 'TCP' }] },
        ],
      });
      await lab.addPods([redis, testPod(0, 1, { containers: [] })]);
      startWorkload(lab, redis);
      await waitListening(lab, 'default/pod-0-0', [{ port: 6379, protocol: 'TCP' }]);
      const ping = await lab.execInPod('default/pod-0-1', [
        'redis-cli',
        '-h',
        '198.18.16.10',
        'PING',
      ]);
      assert.equal(ping.stdout.trim(), 'PONG');
    });
  });

  it('runs the given command with the pod in its environment, and stops it', async () => {
    await withLab(async (lab) => {
      await lab.addNode(testNode(0));
      const code =
        "require('net').createServer((s) => s.end(process.env.POD_NAMESPACE + '/' + process.env.POD_NAME + ' ' + process.env.POD_IP)).listen(8080)";
      const pod = testPod(0, 0, {
        containers: [
          {
            name: 'app',
            image: 'node',
            command: ['node', '-e', code],
            ports: [{ containerPort: 8080, protocol: 'TCP' }],
          },
        ],
      });
      await lab.addPods([pod]);
      const [proc] = startWorkload(lab, pod);
      await waitListening(lab, 'default/pod-0-0', [{ port: 8080, protocol: 'TCP' }]);
      const reply = await lab.execInPod('default/pod-0-0', [
        'node',
        '-e',
        "require('net').connect(8080, '198.18.16.10').on('data', (d) => process.stdout.write(d))",
      ]);
      assert.equal(reply.stdout, 'default/pod-0-0 198.18.16.10');
      assert.equal(await stopWorkload(lab, 'default/pod-0-0'), 1);
      assert.equal(lab.liveProcesses('default/pod-0-0').length, 0);
      assert.ok(proc !== undefined && !lab.processes().some((p) => p.pid === proc.pid));
    });
  });

  it('waitListening fails fast when the workload exits, and times out when nothing listens', async () => {
    await withLab(async (lab) => {
      await lab.addNode(testNode(0));
      const crashing = testPod(0, 0, {
        containers: [
          { name: 'app', image: 'x', command: ['sh', '-c', 'echo boom >&2; exit 3'], ports: [] },
        ],
      });
      await lab.addPods([crashing, testPod(0, 1, { containers: [] })]);
      startWorkload(lab, crashing);
      await assert.rejects(
        waitListening(lab, 'default/pod-0-0', [{ port: 80, protocol: 'TCP' }]),
        /workload exited before serving tcp\/80\n.*boom/s,
      );
      await assert.rejects(
        waitListening(lab, 'default/pod-0-1', [{ port: 53, protocol: 'UDP' }], { timeoutMs: 200 }),
        /nothing serves udp\/53 in time/,
      );
    });
  });
});
