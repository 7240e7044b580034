/**
 * Schedules over HTTP, through the SDK client: create, read, list with cursors, change, pause
 * and resume, preview, the fire records, delete; a schedule fired by the service's own duty,
 * whose task carries the schedule and the fire time; the admin scope. On PGlite.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TaskflowApiError, TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

async function apiError(p: Promise<unknown>): Promise<TaskflowApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TaskflowApiError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('schedules over HTTP (pglite)', () => {
  let svc: TestService;
  let admin: TaskflowClient;
  let seq = 0;
  const fresh = (label: string) => `${label}.${++seq}`;

  beforeAll(async () => {
    svc = await startTestService('pglite');
    admin = svc.admin;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('creates, reads, changes, pauses, resumes, previews and deletes a schedule', async () => {
    const name = fresh('nightly');
    const created = await admin.createSchedule({
      name, cron: '0 30 2 * * *', timezone: 'Europe/Berlin', paused: true,
      template: { type: 'report.build', queue: 'reports', payload: { kind: 'daily' }, priority: 5, maxAttempts: 3, tags: ['nightly'] },
      misfirePolicy: 'once', overlapPolicy: 'skip',
    });
    expect(created).toMatchObject({
      name, cron: '0 30 2 * * *', intervalMs: null, timezone: 'Europe/Berlin', paused: true, misfirePolicy: 'once', overlapPolicy: 'skip',
      misfireGraceMs: 60_000, catchUpMax: 10, catchUpMaxAgeMs: null, startsAt: null, endsAt: null, lastTaskId: null,
      template: { type: 'report.build', queue: 'reports', payload: { kind: 'daily' }, priority: 5, maxAttempts: 3, tags: ['nightly'] },
    });
    expect(created.nextFireAt).not.toBeNull();
    expect(await admin.getSchedule(created.id)).toEqual(created);

    const preview = await admin.previewSchedule(created.id, 3);
    expect(preview.fireTimes).toHaveLength(3);
    expect(preview.fireTimes[0]).toBe(created.nextFireAt);
    for (const t of preview.fireTimes) expect(Date.parse(t)).toBeGreaterThan(Date.parse(preview.now));
    expect((await admin.previewSchedule(created.id)).fireTimes).toHaveLength(10);

    const changed = await admin.updateSchedule(created.id, { intervalMs: 3_600_000, endsAt: '2999-01-01T00:00:00.000Z' });
    expect(changed).toMatchObject({ cron: null, intervalMs: 3_600_000, endsAt: '2999-01-01T00:00:00.000Z', paused: true });
    const cleared = await admin.updateSchedule(created.id, { endsAt: null, cron: '@hourly' });
    expect(cleared).toMatchObject({ cron: '@hourly', intervalMs: null, endsAt: null });

    expect((await admin.resumeSchedule(created.id)).paused).toBe(false);
    expect((await admin.pauseSchedule(created.id)).paused).toBe(true);

    expect((await admin.deleteSchedule(created.id)).id).toBe(created.id);
    expect((await apiError(admin.getSchedule(created.id))).status).toBe(404);
  });

  it('fires by the service\'s own duty: each fire recorded, its task carrying the schedule and the fire time', async () => {
    const queue = fresh('ticks');
    const s = await admin.createSchedule({ name: fresh('ticker'), cron: '* * * * * *', template: { type: 'tick', queue } });
    // The duty fires once a second: wait until two fires are recorded.
    const fires = await vi.waitFor(async () => {
      const page = await admin.listScheduleFires(s.id);
      if (page.items.length < 2) throw new Error(`${page.items.length} fires so far`);
      return page.items;
    }, { timeout: 10_000, interval: 100 });
    await admin.pauseSchedule(s.id);
    expect(fires[0]!.outcome).toBe('created');
    expect(Date.parse(fires[0]!.fireTime)).toBeGreaterThan(Date.parse(fires[1]!.fireTime));
    const task = await admin.getTask(fires[0]!.taskId!);
    expect(task).toMatchObject({ type: 'tick', queue, scheduleId: s.id, fireTime: fires[0]!.fireTime });
    // One page at a time, newest first.
    const first = await admin.listScheduleFires(s.id, { limit: 1 });
    const second = await admin.listScheduleFires(s.id, { limit: 1, cursor: first.nextCursor! });
    expect([first.items[0]!.fireTime, second.items[0]!.fireTime]).toEqual([fires[0]!.fireTime, fires[1]!.fireTime]);
    expect((await admin.getSchedule(s.id)).lastTaskId).not.toBeNull();
  });

  it('lists schedules oldest first, a page at a time', async () => {
    const names = [fresh('page'), fresh('page'), fresh('page')];
    for (const name of names) await admin.createSchedule({ name, intervalMs: 60_000, paused: true, template: { type: 't' } });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await admin.listSchedules({ limit: 2, cursor });
      seen.push(...page.items.map((i) => i.name));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.filter((n) => names.includes(n))).toEqual(names);
  });

  it('answers 409 for a name taken, and needs the admin scope', async () => {
    const name = fresh('taken');
    await admin.createSchedule({ name, intervalMs: 60_000, paused: true, template: { type: 't' } });
    const conflict = await apiError(admin.createSchedule({ name, intervalMs: 60_000, template: { type: 't' } }));
    expect(conflict.status).toBe(409);
    expect(conflict.problem).toMatchObject({ code: 'already_exists', errors: [{ field: '/body/name' }] });
    const producer = await svc.clientWith(['producer']);
    expect((await apiError(producer.listSchedules())).status).toBe(403);
    expect((await apiError(producer.createSchedule({ name: fresh('p'), intervalMs: 60_000, template: { type: 't' } }))).status).toBe(403);
    await producer.close();
  });
});
