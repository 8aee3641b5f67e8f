import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import type { LabTopology } from '../topology/topology.js';
import { CLIENT_SCRIPT, testNode, testPod, withLab } from '../topology/testkit.js';
import { waitListening } from './readiness.js';
import { echoServerPath, startWorkload } from './workloads.js';

const SERVER = 'default/pod-0-0';
const CLIENT = 'default/pod-0-1';
const SERVER_IP = '198.18.16.10';

/** One node, a server pod (tcp/7, udp/7, http/80) and a client pod. */
async function withEchoPods(fn: (lab: LabTopology) => Promise<void>): Promise<void> {
  await withLab(async (lab) => {
    await lab.addNode(testNode(0));
    const server = testPod(0, 0);
    await lab.addPods([server, testPod(0, 1, { containers: [] })]);
    startWorkload(lab, server);
    await waitListening(lab, SERVER, [
      { port: 7, protocol: 'TCP' },
      { port: 7, protocol: 'UDP' },
      { port: 80, protocol: 'TCP' },
    ]);
    await fn(lab);
  });
}

async function client(lab: LabTopology, ...args: string[]): Promise<unknown> {
  const { stdout } = await lab.execInPod(CLIENT, ['node', CLIENT_SCRIPT, ...args]);
  return JSON.parse(stdout);
}

/** Runs an ES module snippet with node inside the client pod; returns its stdout. */
async function script(lab: LabTopology, code: string): Promise<string> {
  return (await lab.execInPod(CLIENT, ['node', '--input-type=module', '-e', code])).stdout;
}

describe('echo_server (root)', () => {
  it('TCP: whoami, clientip, and exact echo for ping-pong, small and large', async () => {
    await withEchoPods(async (lab) => {
      assert.deepEqual(await client(lab, 'whoami', SERVER_IP, '7'), { name: 'pod-0-0' });
      assert.deepEqual(await client(lab, 'echo', SERVER_IP, '7', '64', '500'), {
        rounds: 500,
        bytes: 32000,
      });
      // 4 MiB messages: partial writes and back-pressure on both sides.
      assert.deepEqual(await client(lab, 'echo', SERVER_IP, '7', String(4 << 20), '3'), {
        rounds: 3,
        bytes: 3 * (4 << 20),
      });
      const out = await script(
        lab,
        `import { connect } from 'node:net';
         const s = connect(7, '${SERVER_IP}', () => s.write('clientip\\n'));
         s.on('data', (d) => { process.stdout.write(d); s.end(); });`,
      );
      assert.match(out, /^198\.18\.16\.11:\d+\n$/);
    });
  });

  it('UDP: whoami, clientip, echo', async () => {
    await withEchoPods(async (lab) => {
      assert.deepEqual(await client(lab, 'udp', SERVER_IP, '7', 'whoami'), { reply: 'pod-0-0' });
      assert.deepEqual(await client(lab, 'udp', SERVER_IP, '7', 'hostname\n'), {
        reply: 'pod-0-0',
      });
      assert.match(
        JSON.stringify(await client(lab, 'udp', SERVER_IP, '7', 'clientip')),
        /198\.18\.16\.11:\d+/,
      );
      assert.deepEqual(await client(lab, 'udp', SERVER_IP, '7', 'ping 123'), { reply: 'ping 123' });
    });
  });

  it('HTTP: keep-alive, /hostname and /clientip like agnhost, pipelining, bodies, close', async () => {
    await withEchoPods(async (lab) => {
      const many = (await client(lab, 'http', SERVER_IP, '80', '/', '100')) as {
        statuses: number[];
        bodies: string[];
      };
      assert.deepEqual(new Set(many.statuses), new Set([200]));
      assert.deepEqual(new Set(many.bodies), new Set(['pod-0-0\n']));
      assert.deepEqual(await client(lab, 'http', SERVER_IP, '80', '/hostname', '1'), {
        statuses: [200],
        bodies: ['pod-0-0'],
      });
      const ip = (await client(lab, 'http', SERVER_IP, '80', '/clientip', '1')) as {
        bodies: string[];
      };
      assert.match(ip.bodies[0] ?? '', /^198\.18\.16\.11:\d+$/);
      // Three pipelined requests (one with a body), the last one closing; then the server closes.
      const raw = await script(
        lab,
        `import { connect } from 'node:net';
         const s = connect(80, '${SERVER_IP}', () => s.write(
           'GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' +
           'POST /b HTTP/1.1\\r\\nContent-Length: 5\\r\\n\\r\\nhello' +
           'GET /hostname HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n'));
         let all = '';
         s.on('data', (d) => { all += d; });
         s.on('end', () => process.stdout.write(all));`,
      );
      const responses = raw.split('HTTP/1.1 200 OK\r\n').slice(1);
      assert.equal(responses.length, 3, raw);
      assert.match(responses[0] ?? '', /Content-Length: 8\r\n\r\npod-0-0\n$/);
      assert.match(responses[1] ?? '', /\r\n\r\npod-0-0\n$/);
      assert.match(responses[2] ?? '', /Connection: close\r\n\r\npod-0-0$/);
      // HTTP/1.0 without keep-alive: answered, then closed.
      const http10 = await script(
        lab,
        `import { connect } from 'node:net';
         const s = connect(80, '${SERVER_IP}', () => s.write('GET / HTTP/1.0\\r\\n\\r\\n'));
         let all = '';
         s.on('data', (d) => { all += d; });
         s.on('end', () => process.stdout.write(all));`,
      );
      assert.match(http10, /^HTTP\/1\.1 200 OK\r\n.*Connection: close\r\n\r\npod-0-0\n$/s);
    });
  });

  it('serves 1000 concurrent connections', async () => {
    await withEchoPods(async (lab) => {
      assert.deepEqual(await client(lab, 'many', SERVER_IP, '7', '1000'), {
        ok: 1000,
        names: { 'pod-0-0': 1000 },
      });
    });
  });

  it('exits 0 on SIGTERM, 2 on usage errors, 1 when a port is taken', async () => {
    await withEchoPods(async (lab) => {
      const argv = lab.command({ pod: CLIENT }, [echoServerPath(), '--name', 'x', '--tcp', '9000']);
      const child = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => resolve(code)),
      );
      await waitListening(lab, CLIENT, [{ port: 9000, protocol: 'TCP' }]);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);

      const usage = await lab.execInPod(CLIENT, [echoServerPath(), '--name', 'x'], {
        allowFailure: true,
      });
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /usage: echo_server/);
      const taken = await lab.execInPod(SERVER, [echoServerPath(), '--name', 'x', '--tcp', '7'], {
        allowFailure: true,
      });
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /bind tcp port 7: Address already in use/);
    });
  });
});
