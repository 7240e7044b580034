/**
 * A TCP proxy in front of the test PostgreSQL, for outages a test can make without touching the
 * shared server: `cut` breaks every connection and refuses new ones (as a server that went
 * away), `blackHole` accepts connections and never answers (as a network that drops packets),
 * `restore` forwards again.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** The target's connection string with the proxy's host and port. */
  url: string;
  cut(): Promise<void>;
  blackHole(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let mode: 'forward' | 'blackHole' = 'forward';
  let port = 0;
  let server: Server | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const listen = async () => {
    server = createServer((client) => {
      track(client);
      if (mode === 'blackHole') return;
      const upstream = connect(Number(target.port || 5432), target.hostname);
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    cut: stop,
    blackHole() {
      mode = 'blackHole';
      for (const socket of sockets) socket.destroy();
    },
    async restore() {
      mode = 'forward';
      if (!server) await listen();
    },
    close: stop,
  };
}
