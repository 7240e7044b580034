/**
 * /healthz and /readyz as application/health+json: liveness calls nothing; readiness passes
 * with the database up and its schema current, warns (200) when Redis is unreachable, fails
 * (503) while draining or with a schema this build does not expect. Details to an admin key only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.ts';

async function get(url: string, key?: string) {
  const res = await fetch(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  return { status: res.status, type: res.headers.get('content-type'), cache: res.headers.get('cache-control'), body: (await res.json()) as any };
}

describe('health', () => {
  let svc: TestService;
  beforeAll(async () => {
    // A Redis nobody listens on: wake-ups fall back to LISTEN-less polling, readiness warns.
    svc = await startTestService('postgres', { redisUrl: 'redis://127.0.0.1:1' });
  });
  afterAll(() => svc?.stop());

  it('answers /healthz pass without looking at anything', async () => {
    const h = await get(`${svc.url}/healthz`);
    expect(h).toMatchObject({ status: 200, type: 'application/health+json; charset=utf-8', cache: 'no-store' });
    expect(h.body).toEqual({ status: 'pass', version: '1' });
  });

  it('warns (200) when Redis is down, with each check\'s status only to a caller without a key', async () => {
    const r = await get(`${svc.url}/readyz`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/health\+json/);
    expect(r.body.status).toBe('warn');
    expect(r.body.checks['postgres:responseTime']).toEqual([{ componentType: 'datastore', status: 'pass' }]);
    expect(r.body.checks['postgres:schema']).toEqual([{ componentType: 'datastore', status: 'pass' }]);
    expect(r.body.checks['redis:connection']).toEqual([{ componentType: 'datastore', status: 'warn' }]);
    expect(r.body.releaseId).toBeUndefined();
  });

  it('gives an admin key the values, times and outputs', async () => {
    const r = await get(`${svc.url}/readyz`, svc.adminKey);
    expect(r.body.releaseId).toMatch(/^\d+\.\d+\.\d+/);
    const [db] = r.body.checks['postgres:responseTime'];
    expect(db).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    expect(typeof db.observedValue).toBe('number');
    expect(r.body.checks['redis:connection'][0].output).toMatch(/Redis is unreachable/);
    // A key that is not valid is no error here: the short answer.
    const bogus = await get(`${svc.url}/readyz`, 'tf_not_a_key_at_all_000000');
    expect(bogus.status).toBe(200);
    expect(bogus.body.releaseId).toBeUndefined();
  });

  it('fails (503) once the node drains', async () => {
    svc.service.health.drain();
    const r = await get(`${svc.url}/readyz`);
    expect(r.status).toBe(503);
    expect(r.body.status).toBe('fail');
    expect(r.body.checks['server:draining']).toEqual([{ componentType: 'system', status: 'fail' }]);
    expect((await get(`${svc.url}/healthz`)).status).toBe(200);
  });
});

describe('readiness with a schema this build does not expect', () => {
  it('fails (503) on postgres:schema, saying what to run', async () => {
    const svc = await startTestService('postgres');
    try {
      await svc.service.db.query(`INSERT INTO taskflow_migrations (version, name) VALUES (999, 'from_the_future')`);
      const r = await get(`${svc.url}/readyz`, svc.adminKey);
      expect(r.status).toBe(503);
      expect(r.body.checks['postgres:schema'][0]).toMatchObject({ status: 'fail', observedValue: 999 });
      expect(r.body.checks['postgres:schema'][0].output).toMatch(/run taskflow migrate/);
    } finally {
      await svc.stop();
    }
  });
});
