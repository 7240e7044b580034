/**
 * Bad input to the schedule routes, in the style of badInput.test.ts: each case gets its 4xx
 * problem (RFC 9457, a stable code, a detail naming the field) and nothing is written: the
 * schedules, their fires, the tasks and the queues are compared before and after each case.
 * An invalid expression, an unknown time zone, and a template a task submission would refuse
 * are all refused before anything is stored. The service runs with a small payload limit
 * (1024 bytes) so that an oversized template is cheap to send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverName } from '@taskflow/core';
import { startTestService, type TestService } from './support/service.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Case {
  name: string;
  method: Method;
  /** `:id` is the fixture schedule. */
  path: string;
  body?: unknown;
  /** @defaultValue the admin key */
  auth?: 'admin' | 'producer';
  status: number;
  code: string;
  /** The field the problem names, in `detail` and `errors[].field`. */
  field?: string;
}

const S = '/api/v1/schedules';
const ok = { name: 'bad.new', cron: '0 * * * * *', template: { type: 'bad.tick' } };
const withTemplate = (template: Record<string, unknown>) => ({ ...ok, template: { type: 'bad.tick', ...template } });

const cases: Case[] = [
  // ---- timing
  { name: 'cron out of range', method: 'POST', path: S, body: { ...ok, cron: '61 * * * * *' }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'cron that is not one', method: 'POST', path: S, body: { ...ok, cron: 'every day at noon' }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'cron that never matches (30 February)', method: 'POST', path: S, body: { ...ok, cron: '0 0 0 30 2 *' }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'cron and intervalMs together', method: 'POST', path: S, body: { ...ok, intervalMs: 60_000 }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'neither cron nor intervalMs', method: 'POST', path: S, body: { name: 'bad.new', template: { type: 't' } }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'interval under a second', method: 'POST', path: S, body: { name: 'bad.new', intervalMs: 999, template: { type: 't' } }, status: 400, code: 'validation_failed', field: '/body/intervalMs' },
  { name: 'unknown time zone', method: 'POST', path: S, body: { ...ok, timezone: 'Europe/Atlantis' }, status: 400, code: 'validation_failed', field: '/body/timezone' },
  { name: 'time zone that is not a name', method: 'POST', path: S, body: { ...ok, timezone: 42 }, status: 400, code: 'validation_failed', field: '/body/timezone' },
  { name: 'startsAt not a date-time', method: 'POST', path: S, body: { ...ok, startsAt: 'tomorrow' }, status: 400, code: 'validation_failed', field: '/body/startsAt' },
  { name: 'endsAt before startsAt', method: 'POST', path: S, body: { ...ok, startsAt: '2031-01-02T00:00:00Z', endsAt: '2031-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/endsAt' },
  { name: 'endsAt in year 10000', method: 'POST', path: S, body: { ...ok, endsAt: '+010000-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/endsAt' },
  // ---- policies, name, fields
  { name: 'unknown misfire policy', method: 'POST', path: S, body: { ...ok, misfirePolicy: 'always' }, status: 400, code: 'validation_failed', field: '/body/misfirePolicy' },
  { name: 'catchUpMax 0', method: 'POST', path: S, body: { ...ok, catchUpMax: 0 }, status: 400, code: 'validation_failed', field: '/body/catchUpMax' },
  { name: 'misfire grace under a second', method: 'POST', path: S, body: { ...ok, misfireGraceMs: 10 }, status: 400, code: 'validation_failed', field: '/body/misfireGraceMs' },
  { name: 'unknown overlap policy', method: 'POST', path: S, body: { ...ok, overlapPolicy: 'queue' }, status: 400, code: 'validation_failed', field: '/body/overlapPolicy' },
  { name: 'name with a control character', method: 'POST', path: S, body: { ...ok, name: 'bad\u0000name' }, status: 400, code: 'validation_failed', field: '/body/name' },
  { name: 'name with a lone surrogate', method: 'POST', path: S, body: { ...ok, name: 'bad\ud800name' }, status: 400, code: 'validation_failed', field: '/body/name' },
  { name: 'no name', method: 'POST', path: S, body: { cron: ok.cron, template: ok.template }, status: 400, code: 'validation_failed', field: '/body/name' },
  { name: 'unknown field', method: 'POST', path: S, body: { ...ok, jitter: true }, status: 400, code: 'validation_failed', field: '/body/jitter' },
  { name: 'name taken', method: 'POST', path: S, body: { ...ok, name: 'bad.fixture' }, status: 409, code: 'already_exists', field: '/body/name' },
  // ---- the template, checked as a submission
  { name: 'template without a type', method: 'POST', path: S, body: { ...ok, template: { queue: 'q' } }, status: 400, code: 'validation_failed', field: '/body/template/type' },
  { name: 'template with a run time', method: 'POST', path: S, body: withTemplate({ runAt: '2031-01-01T00:00:00Z' }), status: 400, code: 'validation_failed', field: '/body/template/runAt' },
  { name: 'template with a delay', method: 'POST', path: S, body: withTemplate({ delayMs: 10 }), status: 400, code: 'validation_failed', field: '/body/template/delayMs' },
  { name: 'template with an idempotency key', method: 'POST', path: S, body: withTemplate({ idempotencyKey: 'k' }), status: 400, code: 'validation_failed', field: '/body/template/idempotencyKey' },
  { name: 'template queue name invalid', method: 'POST', path: S, body: withTemplate({ queue: 'no spaces' }), status: 400, code: 'validation_failed', field: '/body/template/queue' },
  { name: 'template priority out of range', method: 'POST', path: S, body: withTemplate({ priority: 2 ** 31 }), status: 400, code: 'validation_failed', field: '/body/template/priority' },
  { name: 'template timeout too short', method: 'POST', path: S, body: withTemplate({ timeoutMs: 1 }), status: 400, code: 'validation_failed', field: '/body/template/timeoutMs' },
  { name: 'template backoff of unknown type', method: 'POST', path: S, body: withTemplate({ backoff: { type: 'random', delayMs: 1 } }), status: 400, code: 'validation_failed', field: '/body/template/backoff/type' },
  { name: 'template payload and payloadBase64', method: 'POST', path: S, body: withTemplate({ payload: 1, payloadBase64: 'AA==' }), status: 400, code: 'validation_failed', field: '/body/template/payloadBase64' },
  { name: 'template payload over the limit', method: 'POST', path: S, body: withTemplate({ payload: 'x'.repeat(2048) }), status: 413, code: 'payload_too_large', field: '/body/template/payload' },
  { name: 'template payload with U+0000', method: 'POST', path: S, body: withTemplate({ payload: { a: 'x\u0000y' } }), status: 400, code: 'validation_failed', field: '/body/template/payload/a' },
  { name: 'template tag with a lone surrogate', method: 'POST', path: S, body: withTemplate({ tags: ['ok', 'x\udfffy'] }), status: 400, code: 'validation_failed', field: '/body/template/tags/1' },
  // ---- changes
  { name: 'change to an invalid cron', method: 'PATCH', path: `${S}/:id`, body: { cron: '* * *' }, status: 400, code: 'validation_failed', field: '/body/cron' },
  { name: 'change to an unknown time zone', method: 'PATCH', path: `${S}/:id`, body: { timezone: 'Mars/Olympus_Mons' }, status: 400, code: 'validation_failed', field: '/body/timezone' },
  { name: 'change of endsAt to before the start it has', method: 'PATCH', path: `${S}/:id`, body: { endsAt: '2031-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/endsAt' },
  { name: 'change of template to a bad one', method: 'PATCH', path: `${S}/:id`, body: { template: { type: 't', contentType: 'text/plain' } }, status: 400, code: 'validation_failed', field: '/body/template/contentType' },
  { name: 'change of name to one taken', method: 'PATCH', path: `${S}/:id`, body: { name: 'bad.other' }, status: 409, code: 'already_exists', field: '/body/name' },
  { name: 'change with paused (use pause/resume)', method: 'PATCH', path: `${S}/:id`, body: { paused: false }, status: 400, code: 'validation_failed', field: '/body/paused' },
  { name: 'change of an unknown schedule', method: 'PATCH', path: `${S}/999999`, body: { catchUpMax: 2 }, status: 404, code: 'not_found' },
  // ---- ids, queries, scope
  { name: 'id that is not a number', method: 'GET', path: `${S}/abc`, status: 400, code: 'validation_failed', field: '/path/id' },
  { name: 'unknown id', method: 'GET', path: `${S}/999999`, status: 404, code: 'not_found' },
  { name: 'pause an unknown schedule', method: 'POST', path: `${S}/999999/pause`, status: 404, code: 'not_found' },
  { name: 'delete an unknown schedule', method: 'DELETE', path: `${S}/999999`, status: 404, code: 'not_found' },
  { name: 'preview of 0 fire times', method: 'GET', path: `${S}/:id/preview?count=0`, status: 400, code: 'validation_failed', field: '/query/count' },
  { name: 'preview of 101 fire times', method: 'GET', path: `${S}/:id/preview?count=101`, status: 400, code: 'validation_failed', field: '/query/count' },
  { name: 'fires with a forged cursor', method: 'GET', path: `${S}/:id/fires?cursor=${Buffer.from('{"before":"never"}').toString('base64url')}`, status: 400, code: 'validation_failed', field: '/query/cursor' },
  { name: 'a producer key creating a schedule', method: 'POST', path: S, body: ok, auth: 'producer', status: 403, code: 'forbidden' },
];

/** Everything a schedule route could write, as one digest. */
async function snapshot(svc: TestService): Promise<string> {
  const { rows } = await svc.service.db.query<{ d: string }>(
    `SELECT concat_ws(':',
        (SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY s.id), '')) FROM schedules s),
        (SELECT md5(coalesce(string_agg(f::text, '|' ORDER BY f.schedule_id, f.fire_time), '')) FROM schedule_fires f),
        (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM tasks t),
        (SELECT count(*) FROM queues)) AS d`,
  );
  return rows[0]!.d;
}

function describeScheduleBadInput(driver: DriverName): void {
  describe(`bad schedule input gets a 4xx problem and writes nothing (${driver})`, () => {
    let svc: TestService;
    let fixtureId: string;
    let producerKey: string;
    let before: string;

    beforeAll(async () => {
      svc = await startTestService(driver, { maxPayloadBytes: 1024 });
      // Paused, so that the firing duty writes nothing while the table runs.
      const fixture = await svc.admin.createSchedule({
        name: 'bad.fixture', cron: '0 0 0 1 1 *', paused: true, startsAt: '2031-06-01T00:00:00Z', template: { type: 'bad.tick' },
      });
      await svc.admin.createSchedule({ name: 'bad.other', intervalMs: 60_000, paused: true, template: { type: 'bad.tick' } });
      fixtureId = fixture.id;
      producerKey = (await svc.admin.createApiKey({ name: 'bad schedules', scopes: ['producer'] })).secret;
      before = await snapshot(svc);
    });

    afterAll(async () => {
      await svc?.stop();
    });

    it.each(cases)('$name → $status $code', async (c) => {
      const path = c.path.replace(':id', fixtureId);
      const headers: Record<string, string> = { authorization: `Bearer ${c.auth === 'producer' ? producerKey : svc.adminKey}` };
      if (c.body !== undefined) headers['content-type'] = 'application/json';
      const ahead = await snapshot(svc);
      const res = await fetch(svc.url + path, { method: c.method, headers, body: c.body === undefined ? undefined : JSON.stringify(c.body) });
      const text = await res.text();
      expect(await snapshot(svc), 'nothing was written').toBe(ahead);
      expect(res.status, text.slice(0, 500)).toBe(c.status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(text) as { code: string; type: string; status: number; detail: string; errors?: { field: string }[] };
      expect(problem).toMatchObject({ code: c.code, type: `urn:taskflow:problem:${c.code}`, status: c.status });
      if (c.field !== undefined) {
        expect(problem.detail).toContain(c.field);
        expect(problem.errors?.map((e) => e.field)).toContain(c.field);
      }
    });

    it('wrote nothing over the whole table', async () => {
      expect(await snapshot(svc)).toBe(before);
      const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM schedules`);
      expect(rows[0]!.n).toBe(2);
    });
  });
}

describeScheduleBadInput('pglite');
describeScheduleBadInput('postgres');
