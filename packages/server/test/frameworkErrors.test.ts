/**
 * The answers Fastify and Node's HTTP server would give in their own shape, each an RFC 9457
 * problem (`application/problem+json`, a stable code, `status` equal to the HTTP status): the
 * router's (over-long parameter, undecodable path), the parser's (`clientError`), a known path
 * with another method (405 with `Allow`), the body parser's (413, 415, malformed JSON), too
 * many query parameters, and a node that is stopping (503 with `Retry-After`).
 *
 * Requests go out as raw bytes over TCP, so that malformed ones reach the server as written.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parserProblem } from '../src/http/problems.ts';
import { startTestService, type TestService } from './support/service.ts';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `request` as is on a new connection; resolves with the first response on it. */
function send(url: string, request: string | Buffer, { keepOpen = false } = {}): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let data = Buffer.alloc(0);
    const done = () => {
      const answer = parseResponse(data);
      if (answer) {
        socket.destroy();
        resolve(answer);
      }
      return answer;
    };
    socket.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (!keepOpen) done();
    });
    socket.on('close', () => done() ?? reject(new Error(`connection closed without a whole response: ${JSON.stringify(data.toString().slice(0, 300))}`)));
    socket.on('error', () => undefined);
  });
}

/** The first complete response in `data` (Content-Length framed), if there is one. */
function parseResponse(data: Buffer): Answer | undefined {
  const text = data.toString('latin1');
  let start = 0;
  // Skip interim responses (100 Continue).
  for (;;) {
    const end = text.indexOf('\r\n\r\n', start);
    if (end === -1) return undefined;
    const [statusLine, ...lines] = text.slice(start, end).split('\r\n');
    const status = Number(statusLine!.split(' ')[1]);
    if (status >= 100 && status < 200) {
      start = end + 4;
      continue;
    }
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length'] ?? 0);
    const body = data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
    if (body.length < length) return undefined;
    return { status, headers, body: body.subarray(0, length).toString('utf8') };
  }
}

interface Case {
  name: string;
  /** The request's bytes; `auth` is replaced by an Authorization header with an admin key. */
  request: (auth: string) => string;
  status: number;
  code: string;
  /** More headers the answer must carry. */
  headers?: Record<string, RegExp>;
  detail?: RegExp;
}

const LIMITS = { maxPayloadBytes: 1024, maxBodyBytes: 64 * 1024 };
const H = (auth: string, extra = '') => `Host: test\r\n${auth}${extra}Connection: close\r\n`;
const post = (path: string, body: string, auth: string, headers = 'Content-Type: application/json\r\n') =>
  `POST ${path} HTTP/1.1\r\n${H(auth, headers)}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const get = (path: string, auth: string) => `GET ${path} HTTP/1.1\r\n${H(auth)}\r\n`;

const cases: Case[] = [
  // The router, before any route.
  { name: 'a path parameter over the router\'s limit', request: (a) => get(`/api/v1/queues/${'q'.repeat(400)}`, a), status: 414, code: 'uri_too_long', detail: /longer than 300 characters/ },
  { name: 'a path that is not valid percent-encoding', request: (a) => get('/api/v1/tasks/%E0%A4%A', a), status: 400, code: 'invalid_url' },
  { name: 'an unknown route', request: (a) => get('/api/v1/nope', a), status: 404, code: 'route_not_found' },
  {
    name: 'a known path with another method', request: (a) => `PUT /api/v1/tasks HTTP/1.1\r\n${H(a)}Content-Length: 0\r\n\r\n`,
    status: 405, code: 'method_not_allowed', headers: { allow: /^GET, HEAD, POST$/ }, detail: /PUT is not allowed on \/api\/v1\/tasks/,
  },
  {
    name: 'a parameterised path with another method', request: (a) => `PATCH /api/v1/workers/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\n${H(a)}Content-Length: 0\r\n\r\n`,
    status: 405, code: 'method_not_allowed', headers: { allow: /^DELETE, GET, HEAD$/ },
  },
  {
    name: 'too many query parameters', request: (a) => get(`/api/v1/tasks?${Array.from({ length: 150 }, (_, i) => `p${i}=1`).join('&')}`, a),
    status: 400, code: 'too_many_parameters', detail: /150 parameters; at most 100/,
  },
  // The body parser.
  { name: 'a body over the limit', request: (a) => post('/api/v1/tasks/batch', `{"tasks":[${'"x",'.repeat(20_000)}"x"]}`, a), status: 413, code: 'payload_too_large' },
  { name: 'a body that is not JSON (text/plain)', request: (a) => post('/api/v1/tasks', '{"type":"a"}', a, 'Content-Type: text/plain\r\n'), status: 415, code: 'unsupported_media_type' },
  { name: 'malformed JSON', request: (a) => post('/api/v1/tasks', '{"type": "a",', a), status: 400, code: 'invalid_json' },
  { name: 'JSON with a __proto__ key', request: (a) => post('/api/v1/tasks', '{"type":"a","__proto__":{"x":1}}', a), status: 400, code: 'invalid_json' },
  // Node's HTTP parser (clientError), before Fastify.
  { name: 'a Content-Length that is not a number', request: (a) => `POST /api/v1/tasks HTTP/1.1\r\n${H(a)}Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`, status: 400, code: 'invalid_content_length' },
  { name: 'two Content-Lengths', request: (a) => `POST /api/v1/tasks HTTP/1.1\r\n${H(a)}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, status: 400, code: 'invalid_content_length' },
  { name: 'Content-Length with Transfer-Encoding', request: (a) => `POST /api/v1/tasks HTTP/1.1\r\n${H(a)}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, status: 400, code: 'invalid_content_length' },
  { name: 'a malformed request line', request: () => 'HELLO\r\n\r\n', status: 400, code: 'malformed_request', detail: /HPE_INVALID_METHOD/ },
  { name: 'a malformed chunk', request: (a) => `POST /api/v1/tasks HTTP/1.1\r\n${H(a)}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, status: 400, code: 'malformed_request' },
  { name: 'headers over the size limit', request: () => `GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431, code: 'headers_too_large' },
  { name: 'a URL over the size limit', request: (a) => get(`/api/v1/tasks?state=${'queued,'.repeat(4000)}`, a), status: 414, code: 'uri_too_long' },
  { name: 'an HTTP/1.1 request without Host', request: () => 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', status: 400, code: 'missing_host' },
];

describe('Fastify\'s and Node\'s own answers are RFC 9457 problems', () => {
  let svc: TestService;
  let auth: string;

  beforeAll(async () => {
    svc = await startTestService('postgres', LIMITS);
    auth = `Authorization: Bearer ${svc.adminKey}\r\n`;
  });

  afterAll(async () => {
    await svc?.stop();
  });

  it.each(cases)('$name → $status $code', async (c) => {
    const answer = await send(svc.url, c.request(auth));
    expect(answer.status, answer.body.slice(0, 300)).toBe(c.status);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(answer.body) as { type: string; title: string; status: number; detail: string; code: string };
    expect(problem).toMatchObject({ type: `urn:taskflow:problem:${c.code}`, status: c.status, code: c.code });
    expect(problem.title.length).toBeGreaterThan(0);
    expect(problem.detail.length).toBeGreaterThan(0);
    if (c.detail) expect(problem.detail).toMatch(c.detail);
    for (const [name, value] of Object.entries(c.headers ?? {})) expect(answer.headers[name]).toMatch(value);
  });

  it('a request timeout (408) is a problem too', () => {
    const timeout = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    expect(parserProblem(timeout)).toMatchObject({ status: 408, code: 'request_timeout' });
    expect(parserProblem(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBeUndefined();
  });
});

describe('a node that is stopping', () => {
  it('answers a request that arrives on an open connection with 503, Retry-After and a problem', async () => {
    const svc = await startTestService('postgres');
    const { hostname, port } = new URL(svc.url);
    const socket = connect(Number(port), hostname);
    await new Promise((r) => socket.once('connect', r));
    let data = Buffer.alloc(0);
    const received = (n: number) => new Promise<void>((resolve) => {
      const check = () => {
        const text = data.toString('latin1');
        const last = text.slice(text.lastIndexOf('HTTP/1.1 '));
        const complete = last.startsWith('HTTP/1.1 1') ? last.includes('\r\n\r\n') : parseResponse(Buffer.from(last, 'latin1')) !== undefined;
        if ((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= n && complete) {
          socket.off('data', onData);
          resolve();
        }
      };
      const onData = (d: Buffer) => {
        data = Buffer.concat([data, d]);
        check();
      };
      socket.on('data', onData);
      check();
    });
    socket.on('error', () => undefined);

    // A request in flight: its headers are in (the server answered 100 Continue), its body is not.
    const body = JSON.stringify({ type: 'stop.test' });
    socket.write(`POST /api/v1/tasks HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${svc.adminKey}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    await received(1);
    const stopped = svc.stop();
    // The node closes its listening socket once it is closing: a new connection is refused.
    for (;;) {
      const refused = await new Promise<boolean>((resolve) => {
        const probe = connect(Number(port), hostname);
        probe.once('connect', () => {
          probe.destroy();
          resolve(false);
        });
        probe.once('error', () => resolve(true));
      });
      if (refused) break;
      await new Promise((r) => setImmediate(r));
    }
    // The body of the first request, then a second request on the same connection.
    socket.write(`${body}GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n`);
    await received(3);
    socket.destroy();
    await stopped;

    const text = data.toString('latin1');
    expect([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))).toEqual([100, 201, 503]);
    const last = parseResponse(Buffer.from(text.slice(text.lastIndexOf('HTTP/1.1 ')), 'latin1'))!;
    expect(last.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(last.headers['retry-after']).toBe('1');
    expect(JSON.parse(last.body)).toMatchObject({ status: 503, code: 'shutting_down' });
  });
});
