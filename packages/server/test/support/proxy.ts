/**
 * A real HTTP proxy in front of a service, for tests of what clients do when the network or
 * the service misbehaves: each request can be forwarded (the default), answered by the proxy
 * without reaching the service, or hung up on; each answer of the service can be passed on,
 * or dropped after the service has handled the request (the connection closes without an
 * answer: the client cannot tell whether its request was committed). The hooks may change
 * while the proxy runs (`proxy.hooks = …`).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query string. */
  path: string;
  body: Buffer;
}

export interface ServiceAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** What to do with a request before it reaches the service. */
export type RequestAction =
  | { kind: 'forward' }
  /** Answer it here; the service never sees it. */
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: string }
  /** Close the connection without forwarding or answering. */
  | { kind: 'hangUp' };

export interface ProxyHooks {
  onRequest?(req: ProxiedRequest): RequestAction | Promise<RequestAction>;
  /** After the service answered: `pass` the answer on, or `drop` it (the connection closes without it). */
  onAnswer?(req: ProxiedRequest, answer: ServiceAnswer): 'pass' | 'drop' | Promise<'pass' | 'drop'>;
}

export interface TestProxy {
  url: string;
  hooks: ProxyHooks;
  /** Every request the proxy received, in order, when (Date.now()), and what became of it. */
  readonly log: { req: ProxiedRequest; at: number; outcome: 'forwarded' | 'answered' | 'hung up' | 'dropped' | 'failed'; status?: number }[];
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a random port) forwarding to `target` (`http://127.0.0.1:7700`). */
export async function startProxy(target: string, hooks: ProxyHooks = {}): Promise<TestProxy> {
  const upstream = new URL(target);
  const proxy: TestProxy = { url: '', hooks, log: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    void handle(proxy, upstream, req, res).catch(() => res.socket?.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

async function handle(proxy: TestProxy, upstream: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const seen: ProxiedRequest = { method: req.method!, path: req.url!, body: Buffer.concat(chunks) };
  const entry: TestProxy['log'][number] = { req: seen, at: Date.now(), outcome: 'forwarded' };
  proxy.log.push(entry);
  const action = (await proxy.hooks.onRequest?.(seen)) ?? { kind: 'forward' };
  if (action.kind === 'hangUp') {
    entry.outcome = 'hung up';
    req.socket.destroy();
    return;
  }
  if (action.kind === 'answer') {
    entry.outcome = 'answered';
    entry.status = action.status;
    res.writeHead(action.status, action.headers ?? {}).end(action.body ?? '');
    return;
  }
  let answer: ServiceAnswer;
  try {
    answer = await forward(upstream, req, seen.body);
  } catch {
    // The service is down: the client sees its connection close, as it would without the proxy.
    entry.outcome = 'failed';
    req.socket.destroy();
    return;
  }
  entry.status = answer.status;
  if ((await proxy.hooks.onAnswer?.(seen, answer)) === 'drop') {
    entry.outcome = 'dropped';
    req.socket.destroy();
    return;
  }
  res.writeHead(answer.status, answer.headers).end(answer.body);
}

/** One request to the service on a connection of its own (no keep-alive left behind). */
function forward(upstream: URL, req: IncomingMessage, body: Buffer): Promise<ServiceAnswer> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: upstream.host, connection: 'close' };
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = { ...res.headers };
        delete h.connection;
        delete h['keep-alive'];
        delete h['transfer-encoding'];
        resolve({ status: res.statusCode!, headers: h, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}
