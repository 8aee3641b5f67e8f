/**
 * The agent's local HTTP endpoint (kube-proxy's healthz port, 10256 by default):
 *   GET /healthz  200 while the agent runs, with its status as JSON
 *   GET /readyz   200 once the first reconcile is programmed, else 503; same JSON
 * The status names the source generation and digest last programmed, so a caller that wrote the
 * source (the lab) can wait until its change is in the maps.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { AgentError } from './errors.js';

export interface HealthServer {
  readonly address: string;
  close(): Promise<void>;
}

export function startHealthServer(
  host: string,
  port: number,
  status: () => { ready: boolean },
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const body = status();
    let code = 200;
    if (path === '/readyz') code = body.ready ? 200 : 503;
    else if (path !== '/healthz') code = 404;
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(code === 404 ? '{"error":"not found"}\n' : `${JSON.stringify(body)}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(new AgentError('AGENT_CONFIG', `health.address ${host}:${port}: ${error.message}`)),
    );
    server.listen(port, host, () => {
      resolve({
        address: `${host}:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
