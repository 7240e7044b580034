/**
 * A bare node:http server, for diagnose.ts: answers any JSON POST with a small JSON body, the
 * size of a task reference, and nothing behind it. The floor of one HTTP exchange on this
 * machine. Sends `{port}` over IPC once listening; exits when the parent goes.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString());
    const out = JSON.stringify({ id: '123', queue: body.queue, type: body.type, state: 'queued', priority: 0, runAt: new Date().toISOString() });
    res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' });
    res.end(out);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
process.on('disconnect', () => process.exit(0));
