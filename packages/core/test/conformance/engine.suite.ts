/**
 * The engine conformance suite: every transition of the state machine, with its boundaries,
 * run unchanged against each driver (see engine.pglite.test.ts, engine.postgres.test.ts).
 * Time is a ManualClock, so "a lease that expires in one millisecond" is exact.
 */
import { describe, expect, it } from 'vitest';
import {
  Engine, InvalidStateError, ManualClock, NotFoundError, type DriverName, type EngineOptions, type Executor,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');

export function describeEngineConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup(options: Partial<EngineOptions> = {}) {
    const db = await dbs.fresh();
    const clock = new ManualClock(T0);
    const engine = new Engine({
      db,
      clock,
      options: { defaultBackoff: { type: 'fixed', delayMs: 1000 }, ...options },
    });
    const worker = async (queues: string[] = ['q'], name = 'w') =>
      (await engine.registerWorker({ name, queues: queues.map((n) => ({ name: n, weight: 1 })), concurrency: 10 })).id;
    return { db, clock, engine, worker };
  }

  async function attemptsOf(engine: Engine, id: string) {
    return (await engine.getAttempts(id)).map((a) => a.outcome);
  }

  describe(`engine conformance (${driver})`, () => {
    describe('migrations', () => {
      it('are idempotent and recorded in the ledger', async () => {
        const { db } = await setup();
        const { migrate, loadMigrations, silentLogger } = await import('@taskflow/core');
        const again = await migrate(db, silentLogger);
        expect(again.applied).toEqual([]);
        const { rows } = await db.query('SELECT version FROM taskflow_migrations ORDER BY version');
        expect(rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
      });

      it('set the tasks table to be vacuumed sooner than by default, indexes included', async () => {
        // Migration 0003: the ready index keeps the entries of claimed tasks until a vacuum
        // that does not skip the indexes (docs/operations.md, "Vacuum and the ready index").
        const { db } = await setup();
        const { rows } = await db.query(`SELECT reloptions FROM pg_class WHERE oid = 'tasks'::regclass`);
        expect(rows[0]!.reloptions).toEqual(expect.arrayContaining([
          'autovacuum_vacuum_scale_factor=0.02', 'autovacuum_vacuum_threshold=10000', 'vacuum_index_cleanup=on',
        ]));
      });

      it('0015 carries tasks in every state over, and the database still refuses bad values', async () => {
        const { migrate, loadMigrations, silentLogger } = await import('@taskflow/core');
        const db = await dbs.fresh({ migrate: false });
        const all = loadMigrations();
        const at = all.findIndex((m) => m.name === 'lean_hot_path');
        expect(at).toBeGreaterThan(0);
        await migrate(db, silentLogger, all.slice(0, at));
        // Before 0015: two workers, and a task in every state (`held` and `lapsed` running,
        // `blocked` waiting for `held`), as the engine leaves them.
        const [w1, w2] = [crypto.randomUUID(), crypto.randomUUID()];
        await db.query(
          `INSERT INTO workers (id, name, queues, concurrency, state, registered_at, last_seen_at, expires_at)
           SELECT id, 'w', '[{"name":"q","weight":1}]', 10, 'active', $3, $3, $3::timestamptz + interval '1 hour' FROM unnest(ARRAY[$1::uuid, $2::uuid]) AS id`,
          [w1, w2, T0],
        );
        const { rows } = await db.query<{ id: string; type: string }>(
          `INSERT INTO tasks (queue, type, state, run_at, created_at, max_attempts, backoff, timeout_ms, attempt, worker_id,
                              lease_expires_at, started_at, finished_at, result, dead_reason, has_children, has_parents, pending_parents)
           SELECT 'q', t.type, t.type, $1::timestamptz + t.later * interval '1 hour', $1, 5, '{"type":"fixed","delayMs":1000}'::jsonb, 1000,
                  t.attempt, t.worker, CASE WHEN t.worker IS NOT NULL THEN $1::timestamptz + interval '1 second' END,
                  CASE WHEN t.attempt > 0 THEN $1::timestamptz END, CASE WHEN t.type IN ('succeeded', 'dead', 'cancelled') THEN $1::timestamptz END,
                  CASE WHEN t.type = 'succeeded' THEN '"done"'::jsonb END, CASE WHEN t.type = 'dead' THEN 'exhausted' END,
                  t.type = 'running', t.type = 'blocked', CASE WHEN t.type = 'blocked' THEN 1 ELSE 0 END
             FROM (VALUES ('succeeded', 0, 1, NULL::uuid), ('dead', 0, 5, NULL), ('retrying', 0, 1, NULL), ('running', 0, 1, $2::uuid),
                          ('queued', 0, 0, NULL), ('scheduled', 1, 0, NULL), ('cancelled', 0, 0, NULL), ('blocked', 0, 0, NULL)) AS t(type, later, attempt, worker)
           UNION ALL
           SELECT 'q', 'lapsed', 'running', $1, $1, 5, '{"type":"fixed","delayMs":1000}'::jsonb, 1000, 1, $3::uuid, $1::timestamptz + interval '1 second',
                  $1, NULL, NULL, NULL, false, false, 0
           RETURNING id::text AS id, type`,
          [T0, w1, w2],
        );
        const id = Object.fromEntries(rows.map((r) => [r.type, r.id]));
        await db.query('INSERT INTO task_dependencies (parent, child) VALUES ($1, $2)', [id.running, id.blocked]);

        expect((await migrate(db, silentLogger)).applied).toEqual(all.slice(at).map((m) => m.version));
        const clock = new ManualClock(T0);
        const engine = new Engine({ db, clock, options: { defaultBackoff: { type: 'fixed', delayMs: 1000 } } });
        for (const [type, taskId] of Object.entries(id)) expect((await engine.getTask(taskId!)).state).toBe(type === 'lapsed' ? 'running' : type);
        expect(await engine.getTask(id.succeeded!)).toMatchObject({ result: 'done', maxAttempts: 5, timeoutMs: 1000 });
        expect(await engine.getTask(id.dead!)).toMatchObject({ deadReason: 'exhausted' });
        // The running set's index serves heartbeats, settlements and the rescue of lapsed leases.
        const { rows: indexes } = await db.query<{ name: string }>(
          `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'tasks'::regclass ORDER BY 1`);
        expect(indexes.map((r) => r.name)).toContain('tasks_running');
        expect(indexes.map((r) => r.name)).not.toContain('tasks_leases');
        clock.advance(600);
        expect(await engine.heartbeat(w1, [id.running!])).toEqual({ held: [id.running], cancel: [] });
        clock.advance(600); // w2's lease ran out, w1's was renewed
        expect(await engine.rescueExpired()).toBe(1);
        expect((await engine.getTask(id.lapsed!)).state).toBe('retrying');
        expect(await engine.settle(w1, [{ id: id.running!, attempt: 1, status: 'succeeded' }])).toEqual(['accepted']);
        expect((await engine.getTask(id.blocked!)).state).toBe('queued');
        expect((await engine.claim(w2, [{ name: 'q', weight: 1 }], 10)).map((c) => c.type).sort()).toEqual(['blocked', 'queued']);
        // The column checks are domains now: the database refuses what the CHECKs refused.
        for (const set of [`state = 'lost'`, `dead_reason = 'bored'`, 'max_attempts = 0', 'timeout_ms = 0', 'pending_parents = -1']) {
          await expect(db.query(`UPDATE tasks SET ${set} WHERE id = $1`, [id.scheduled]), set).rejects.toMatchObject({ code: '23514' });
        }
        await expect(db.query(
          `INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms) VALUES ('q', 't', 'nonsense', now(), 1, '{}', 1)`,
        )).rejects.toMatchObject({ code: '23514' });
      });

      it('refuse a schema newer than the code', async () => {
        const { db } = await setup();
        const { migrate, silentLogger, SchemaTooNewError } = await import('@taskflow/core');
        await db.query(`INSERT INTO taskflow_migrations (version, name) VALUES (999, 'from_the_future')`);
        await expect(migrate(db, silentLogger)).rejects.toBeInstanceOf(SchemaTooNewError);
        await expect(migrate(db, silentLogger)).rejects.toThrow(/migration 999.*knows migrations up to \d+/);
      });
    });

    describe('enqueue', () => {
      it('applies defaults and stores every field', async () => {
        const { engine } = await setup();
        const [r] = await engine.enqueue([{ type: 'email.send', payload: { to: 'a@example.com' }, tags: ['x', 'y'] }]);
        expect(r!.created).toBe(true);
        const task = await engine.getTask(r!.task.id);
        expect(task).toMatchObject({
          queue: 'default', type: 'email.send', state: 'queued', priority: 0, payload: { to: 'a@example.com' },
          attempt: 0, maxAttempts: 5, timeoutMs: 30_000, tags: ['x', 'y'], idempotencyKey: null,
          backoff: { type: 'fixed', delayMs: 1000 },
        });
        expect(task.runAt.getTime()).toBe(T0.getTime());
        expect(task.createdAt.getTime()).toBe(T0.getTime());
        expect(r!.task).toEqual(task);
      });

      it('stores given values and defaults side by side in one batch', async () => {
        // The insert leaves a default out of its JSON (the statement fills it in): a row with
        // every field given must keep them, and its neighbours must not pick them up.
        const { engine } = await setup();
        const given = {
          type: 't', queue: 'q', priority: -3, maxAttempts: 9, timeoutMs: 1234, tags: ['a'],
          backoff: { type: 'linear' as const, delayMs: 70 }, delayMs: 0, idempotencyKey: 'k',
        };
        const results = await engine.enqueue([{ type: 't', queue: 'q' }, given, { type: 't', queue: 'q', payload: 0 }]);
        const [plain, full, zero] = await Promise.all(results.map((r) => engine.getTask(r.task.id)));
        const defaults = { priority: 0, maxAttempts: 5, timeoutMs: 30_000, tags: [], backoff: { type: 'fixed', delayMs: 1000 }, idempotencyKey: null };
        expect(plain).toMatchObject({ ...defaults, payload: null, state: 'queued' });
        expect(zero).toMatchObject({ ...defaults, payload: 0, state: 'queued' });
        expect(full).toMatchObject({
          priority: -3, maxAttempts: 9, timeoutMs: 1234, tags: ['a'], backoff: { type: 'linear', delayMs: 70 },
          idempotencyKey: 'k', payload: null, state: 'queued',
        });
        expect(full!.runAt.getTime()).toBe(T0.getTime());
      });

      it('keeps any JSON value as payload, null included', async () => {
        const { engine } = await setup();
        const values = [null, 0, 'text', [1, 'two', null], { nested: { deep: [true] } }];
        const results = await engine.enqueue(values.map((payload) => ({ type: 't', payload })));
        for (const [i, r] of results.entries()) expect((await engine.getTask(r.task.id)).payload).toEqual(values[i]);
      });

      it('keeps text that array literals would misread: quotes, backslashes, commas, braces, NULL, empty', async () => {
        // The insert sends each column as a PostgreSQL array literal (engine/insertColumns.ts).
        const { engine } = await setup();
        const odd = ['NULL', '', 'a,b', '{x}', 'say "hi"', 'back\\slash', ' padded ', 'naïve ☃'];
        const inputs = odd.map((s, k) => ({
          type: `t ${s}`, queue: `q${s}`, payload: { s, k }, tags: [s, 'NULL', '"', '\\', ''], idempotencyKey: s,
        }));
        const bytes = Buffer.from('\\"{},NULL').toString('base64');
        const results = await engine.enqueue([...inputs, { type: 't', queue: 'q', payload: 'NULL' }, { type: 't', queue: 'q', payloadBase64: bytes, contentType: 'text/"odd"' }]);
        for (const [k, input] of inputs.entries()) {
          expect(await engine.getTask(results[k]!.task.id)).toMatchObject({ ...input, state: 'queued' });
        }
        expect(await engine.getTask(results[odd.length]!.task.id)).toMatchObject({ payload: 'NULL', payloadBase64: null });
        expect(await engine.getTask(results[odd.length + 1]!.task.id)).toMatchObject({ payload: null, payloadBase64: bytes, contentType: 'text/"odd"' });
      });

      it('keeps each payload with its task when JSON and bytes payloads alternate in a batch', async () => {
        // The payloads travel as one JSON array, `null` in the place of a bytes payload
        // (engine/insertColumns.ts): a bytes task must store no JSON, its neighbours theirs.
        const { engine } = await setup();
        const b = (s: string) => Buffer.from(s).toString('base64');
        const inputs = [
          { type: 't', payloadBase64: b('first') }, { type: 't', payload: { k: 1 } }, { type: 't', payloadBase64: b('second') },
          { type: 't', payload: null }, { type: 't' }, { type: 't', payload: [2] }, { type: 't', payloadBase64: b('last') },
        ];
        const results = await engine.enqueue(inputs);
        const tasks = await Promise.all(results.map((r) => engine.getTask(r.task.id)));
        expect(tasks.map((t) => [t.payload, t.payloadBase64])).toEqual([
          [null, b('first')], [{ k: 1 }, null], [null, b('second')], [null, null], [null, null], [[2], null], [null, b('last')],
        ]);
        const { rows } = await engine.db.query(`SELECT payload IS NULL AS absent FROM tasks WHERE id = ANY($1::bigint[]) ORDER BY id`, [results.map((r) => r.task.id)]);
        // JSON null is stored as JSON null; a bytes task stores no JSON at all.
        expect(rows.map((r) => r.absent)).toEqual([true, false, true, false, false, false, true]);
      });

      it('refuses a payloadJson that is not one JSON value, writing nothing rather than shifting payloads', async () => {
        const { engine } = await setup();
        const { InvalidInputError } = await import('@taskflow/core');
        await expect(engine.enqueue([{ type: 't', payload: 1, payloadJson: '1,2' }, { type: 't', payload: 3 }])).rejects.toBeInstanceOf(InvalidInputError);
        await expect(engine.enqueue([{ type: 't', payload: 1, payloadJson: '{"a":' }])).rejects.toBeInstanceOf(InvalidInputError);
        expect(await engine.listTasks({ limit: 10 })).toEqual([]);
      });

      it('keeps opaque bytes with their content type', async () => {
        const { engine, worker } = await setup();
        const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256)).toString('base64'); // longer than one base64 line
        const [r] = await engine.enqueue([{ type: 't', queue: 'q', payloadBase64: bytes, contentType: 'application/x-protobuf' }]);
        const task = await engine.getTask(r!.task.id);
        expect(task).toMatchObject({ payload: null, payloadBase64: bytes, contentType: 'application/x-protobuf' });
        const [claimed] = await engine.claim(await worker(), [{ name: 'q', weight: 1 }], 1);
        expect(claimed).toMatchObject({ payloadJson: null, payloadBase64: bytes, contentType: 'application/x-protobuf' });
      });

      it('schedules tasks whose run time is in the future, by runAt or delay', async () => {
        const { engine } = await setup();
        const [a, b, c] = await engine.enqueue([
          { type: 't', runAt: new Date(T0.getTime() + 60_000) },
          { type: 't', delayMs: 5000 },
          { type: 't', runAt: new Date(T0.getTime() - 1) },
        ]);
        expect(a!.task.state).toBe('scheduled');
        expect(b!.task.state).toBe('scheduled');
        expect(b!.task.runAt.getTime()).toBe(T0.getTime() + 5000);
        expect(c!.task.state).toBe('queued');
        // The insert answers these run times apart from the tasks queued at once (its `odd` list).
        expect(a!.task.runAt.getTime()).toBe(T0.getTime() + 60_000);
        expect(c!.task.runAt.getTime()).toBe(T0.getTime() - 1);
        for (const r of [a, b, c]) expect(await engine.getTask(r!.task.id)).toEqual(r!.task);
      });

      it('returns the original task for a repeated idempotency key, within its queue', async () => {
        const { engine } = await setup();
        const [first] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'k1', payload: 1 }]);
        const [again, dupInBatch, otherQueue, dupOtherQueue] = await engine.enqueue([
          { type: 't', queue: 'q', idempotencyKey: 'k1', payload: 2 },
          { type: 't', queue: 'q2', idempotencyKey: 'k2' },
          { type: 't', queue: 'q3', idempotencyKey: 'k1' },
          { type: 't', queue: 'q2', idempotencyKey: 'k2' },
        ]);
        expect(again).toMatchObject({ created: false, task: { id: first!.task.id, payload: 1 } });
        expect(dupInBatch!.created).toBe(true);
        expect(dupOtherQueue).toMatchObject({ created: false, task: { id: dupInBatch!.task.id } });
        expect(otherQueue!.created).toBe(true);
        expect(otherQueue!.task.id).not.toBe(first!.task.id);
      });

      it('creates one task for concurrent submissions with one key', async () => {
        const { engine } = await setup();
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'same', payload: i }])),
        );
        const ids = new Set(results.map(([r]) => r!.task.id));
        expect(ids.size).toBe(1);
        expect(results.filter(([r]) => r!.created)).toHaveLength(1);
        expect(await engine.listTasks({ queue: 'q', limit: 100 })).toHaveLength(1);
      });

      it('group-commits concurrent single submissions, each answered with its own task', async () => {
        const { engine } = await setup();
        const { EnqueueBatcher, InvalidInputError } = await import('@taskflow/core');
        const batcher = new EnqueueBatcher(engine, { maxInFlight: 1 });
        const results = await Promise.allSettled([
          ...Array.from({ length: 30 }, (_, i) => batcher.enqueue({ type: 't', queue: 'q', payload: i })),
          batcher.enqueue({ type: 'bad\u0000type', queue: 'q' }),
          batcher.enqueue({ type: 't', queue: 'q', idempotencyKey: 'k', payload: 'first' }),
          batcher.enqueue({ type: 't', queue: 'q', idempotencyKey: 'k', payload: 'second' }),
        ]);
        const ok = results.slice(0, 30).map((r) => (r as PromiseFulfilledResult<{ task: { id: string; payload: unknown } }>).value.task);
        expect(ok.map((t) => t.payload)).toEqual(Array.from({ length: 30 }, (_, i) => i));
        expect(new Set(ok.map((t) => t.id)).size).toBe(30);
        expect(results[30]).toMatchObject({ status: 'rejected', reason: expect.any(InvalidInputError) });
        const [first, second] = results.slice(31) as PromiseFulfilledResult<{ created: boolean; task: { id: string; payload: unknown } }>[];
        expect(first!.value).toMatchObject({ created: true, task: { payload: 'first' } });
        expect(second!.value).toMatchObject({ created: false, task: { id: first!.value.task.id, payload: 'first' } });
        expect(await engine.listTasks({ queue: 'q', limit: 100 })).toHaveLength(31);
      });

      it('group-commits concurrent batch submissions into one insert, each all or nothing', async () => {
        const { engine } = await setup();
        const { EnqueueBatcher, InvalidInputError } = await import('@taskflow/core');
        let inserts = 0;
        const query = engine.db.query.bind(engine.db);
        engine.db.query = ((sql: Parameters<typeof query>[0], params?: Parameters<typeof query>[1]) => {
          if (typeof sql !== 'string' && sql.name.startsWith('tf_task_insert_many')) inserts++;
          return query(sql, params);
        }) as typeof engine.db.query;
        const batcher = new EnqueueBatcher(engine, { maxInFlight: 1, maxBatch: 1000 });
        const unit = (u: number, n: number) => Array.from({ length: n }, (_, i) => ({ type: 't', queue: 'q', payload: [u, i] }));
        // Ten requests of three and one of a single task, made in one turn: one statement.
        const results = await Promise.all([...Array.from({ length: 10 }, (_, u) => batcher.enqueueMany(unit(u, 3))), batcher.enqueue({ type: 't', queue: 'q', payload: 'one' })]);
        expect(inserts).toBe(1);
        results.slice(0, 10).forEach((r, u) => expect((r as { task: { payload: unknown } }[]).map((x) => x.task.payload)).toEqual([[u, 0], [u, 1], [u, 2]]));
        expect((results[10] as { task: { payload: unknown } }).task.payload).toBe('one');
        // A request the database refuses fails alone, and none of its tasks is written; the
        // others of its statement are retried request by request, keys keeping arrival order.
        inserts = 0;
        const mixed = await Promise.allSettled([
          batcher.enqueueMany([{ type: 't', queue: 'q', idempotencyKey: 'k', payload: 'first' }, { type: 't', queue: 'q', payload: 'a' }]),
          batcher.enqueueMany([{ type: 't', queue: 'q', payload: 'b' }, { type: 'bad\u0000type', queue: 'q' }]),
          batcher.enqueueMany([{ type: 't', queue: 'q', idempotencyKey: 'k', payload: 'second' }]),
        ]);
        expect(inserts).toBe(4); // the shared statement, then each request alone
        const [first, bad, second] = mixed;
        expect(first).toMatchObject({ status: 'fulfilled', value: [{ created: true, task: { payload: 'first' } }, { created: true, task: { payload: 'a' } }] });
        expect(bad).toMatchObject({ status: 'rejected', reason: expect.any(InvalidInputError) });
        const original = (first as PromiseFulfilledResult<{ task: { id: string } }[]>).value[0]!.task.id;
        expect(second).toMatchObject({ status: 'fulfilled', value: [{ created: false, task: { id: original, payload: 'first' } }] });
        const payloads = (await engine.listTasks({ queue: 'q', limit: 100 })).map((t) => t.payload);
        expect(payloads).toHaveLength(33);
        expect(payloads).not.toContain('b');
        // Requests that together exceed maxBatch go in more than one statement, none split.
        inserts = 0;
        const small = new EnqueueBatcher(engine, { maxInFlight: 1, maxBatch: 5 });
        const split = await Promise.all([small.enqueueMany(unit(20, 3)), small.enqueueMany(unit(21, 3)), small.enqueueMany(unit(22, 7))]);
        expect(inserts).toBe(3);
        expect(split.map((r) => r.length)).toEqual([3, 3, 7]);
        // A request of `alone` tasks or more goes at once by itself, even while the one insert
        // allowed in flight holds the small ones back.
        inserts = 0;
        const alone = new EnqueueBatcher(engine, { maxInFlight: 1, alone: 4 });
        const smallA = alone.enqueueMany(unit(30, 3));
        const smallB = alone.enqueueMany(unit(31, 3));
        expect(inserts).toBe(0); // the small ones wait for the next turn of the event loop
        const big = alone.enqueueMany(unit(32, 4));
        expect(inserts).toBe(1); // the big one was sent at once
        const sizes = (await Promise.all([smallA, smallB, big])).map((r) => r.length);
        expect(sizes).toEqual([3, 3, 4]);
        expect(inserts).toBe(2); // the two small requests together, the big one alone
      });

      it('maps a value PostgreSQL refuses to an input error, writing nothing', async () => {
        const { engine } = await setup();
        const { InvalidInputError } = await import('@taskflow/core');
        await expect(engine.enqueue([{ type: 't' }, { type: 'bad\u0000type' }])).rejects.toBeInstanceOf(InvalidInputError);
        expect(await engine.listTasks({ limit: 10 })).toHaveLength(0);
      });
    });

    describe('claim', () => {
      it('orders by priority, then run time, then id, and respects the limit', async () => {
        const { engine, worker, clock } = await setup();
        const made = await engine.enqueue([
          { type: 'low', queue: 'q', priority: 0 },
          { type: 'high-late', queue: 'q', priority: 5, runAt: new Date(T0.getTime() - 1000) },
          { type: 'high-early', queue: 'q', priority: 5, runAt: new Date(T0.getTime() - 2000) },
          { type: 'low-2', queue: 'q', priority: 0 },
        ]);
        expect(made.every((m) => m.task.state === 'queued')).toBe(true);
        const w = await worker();
        const first = await engine.claim(w, [{ name: 'q', weight: 1 }], 3);
        expect(first.map((t) => t.type)).toEqual(['high-early', 'high-late', 'low']);
        const rest = await engine.claim(w, [{ name: 'q', weight: 1 }], 3);
        expect(rest.map((t) => t.type)).toEqual(['low-2']);
        expect(first[0]).toMatchObject({ attempt: 1, attemptsLeft: 4, timeoutMs: 30_000 });
        expect(Date.parse(first[0]!.leaseExpiresAt)).toBe(clock.now().getTime() + 30_000);
        expect(JSON.parse(first[0]!.payloadJson!)).toBeNull();
      });

      it('gives each task to one claimer when claims race', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue(Array.from({ length: 60 }, (_, i) => ({ type: 't', queue: 'q', payload: i })));
        const workers = await Promise.all([worker(), worker(), worker()]);
        const batches = await Promise.all(
          [...workers, ...workers].map((w) => engine.claim(w, [{ name: 'q', weight: 1 }], 15)),
        );
        const ids = batches.flat().map((t) => t.id);
        expect(ids).toHaveLength(60);
        expect(new Set(ids).size).toBe(60);
      });

      it('skips paused queues and resumes them', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w = await worker();
        expect((await engine.setQueuePaused('q', true)).paused).toBe(true);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 5)).toHaveLength(0);
        await engine.setQueuePaused('q', false);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 5)).toHaveLength(1);
      });

      it('serves only the queues the worker registered, and only active workers', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'other' }, { type: 't', queue: 'q' }]);
        const w = await worker(['q']);
        expect(await engine.claim(w, [{ name: 'other', weight: 1 }], 5)).toHaveLength(0);
        await engine.deregisterWorker(w);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 5)).toHaveLength(0);
        expect(await engine.claim(crypto.randomUUID(), [{ name: 'q', weight: 1 }], 5)).toHaveLength(0);
      });

      it('keeps one generic plan of the claim statements once the tables have statistics', async () => {
        // A custom plan is a planning of the whole statement at every execution (the plan
        // cache's choice while the generic plan's estimate looks dearer): see claimCtes.
        const { engine, worker, clock } = await setup();
        const w = await worker();
        // A backlog of 5,000: a tenth of it, a generic plan's guess at `LIMIT $n`, costs more
        // than the custom plans' five rows, with statistics.
        for (let i = 0; i < 5; i++) await engine.enqueue(Array.from({ length: 1000 }, (_, j) => ({ type: 't', queue: 'q', payload: j })));
        await engine.db.exec('ANALYZE tasks; ANALYZE workers; ANALYZE queues');
        const { statements: S, successesJson } = await import('@taskflow/core/internal');
        const plans = async (tx: Executor) => {
          const { rows } = await tx.query<{ name: string; generic: number }>(
            `SELECT name, generic_plans::integer AS generic FROM pg_prepared_statements
              WHERE name LIKE '%tf_task_claim' OR name LIKE '%tf_task_succeed_and_claim'`);
          const sum = (suffix: string) => rows.filter((r) => r.name.endsWith(suffix)).reduce((n, r) => n + r.generic, 0);
          return { claim: sum('tf_task_claim'), succeedAndClaim: sum('tf_task_succeed_and_claim') };
        };
        // One connection throughout (a transaction), whose plan cache pg_prepared_statements shows.
        const [before, after, claimed] = await engine.db.transaction(async (tx) => {
          const before = await plans(tx);
          let claimed = 0;
          for (let round = 0; round < 8; round++) {
            const { rows } = await tx.query<{ id: string; attempt: number }>(S.claim, ['q', 5, w, clock.now()]);
            const { rows: next } = await tx.query<{ kind: string }>(S.succeedAndClaim,
              [successesJson(rows), w, clock.now(), 'q', 5]);
            claimed += rows.length + next.filter((r) => r.kind === 'claimed').length;
          }
          return [before, await plans(tx), claimed];
        });
        expect(claimed).toBe(80);
        // Five custom plans first, then the generic one at every execution.
        expect(after.claim - before.claim).toBe(3);
        expect(after.succeedAndClaim - before.succeedAndClaim).toBe(3);
      });

      it('fills a batch from several queues', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 'a', queue: 'q1' }, { type: 'b', queue: 'q2' }, { type: 'c', queue: 'q2' }]);
        const w = await worker(['q1', 'q2']);
        const got = await engine.claim(w, [{ name: 'q1', weight: 1 }, { name: 'q2', weight: 3 }], 10);
        expect(got.map((t) => t.type).sort()).toEqual(['a', 'b', 'c']);
      });
    });

    describe('settle', () => {
      it('records success with its result and logs', async () => {
        const { engine, worker, clock } = await setup();
        const { task } = (await engine.enqueue([{ type: 't', queue: 'q' }]))[0]!;
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        clock.advance(250);
        const logs = [{ at: T0.toISOString(), level: 'info', message: 'hello' }];
        expect(await engine.settle(w, [{ id: c!.id, attempt: c!.attempt, status: 'succeeded', result: { ok: 1 }, logs }])).toEqual(['accepted']);
        const done = await engine.getTask(task.id);
        expect(done).toMatchObject({ state: 'succeeded', result: { ok: 1 }, leaseExpiresAt: null, workerId: w });
        expect(done.finishedAt!.getTime() - done.startedAt!.getTime()).toBe(250);
        const attempts = await engine.getAttempts(task.id);
        expect(attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'succeeded', workerId: w, logs })]);
      });

      it('stores each success of a batch with its own result and logs, an absent result as JSON null', async () => {
        const { engine, worker } = await setup();
        const tasks = (await engine.enqueue(Array.from({ length: 8 }, () => ({ type: 't', queue: 'q' })))).map((r) => r.task);
        const w = await worker();
        const claimed = await engine.claim(w, [{ name: 'q', weight: 1 }], 8);
        const logs = [{ at: T0.toISOString(), level: 'warn', message: 'a "quoted" \\ line' }];
        const reports = [
          { result: { n: 1, s: 'x"y\\z' } },
          { resultJson: 'null' },
          {},
          { logs },
          { resultJson: '[1,{"a":null}]', logs },
          { result: 'a "string" result' },
          { resultJson: '"{\\"not\\": \\"an object\\"}"' },
          { result: 0 },
        ].map((extra, i) => ({ id: claimed[i]!.id, attempt: claimed[i]!.attempt, status: 'succeeded' as const, ...extra }));
        expect(await engine.settleAndClaim(w, reports, [{ name: 'q', weight: 1 }], 1)).toEqual({ outcomes: Array(8).fill('accepted'), tasks: [] });
        const byId = new Map((await Promise.all(tasks.map((t) => engine.getTask(t.id)))).map((t) => [t.id, t]));
        const stored = claimed.map((c) => byId.get(c.id)!);
        expect(stored.map((t) => t.state)).toEqual(Array(8).fill('succeeded'));
        expect(stored.map((t) => t.result)).toEqual([{ n: 1, s: 'x"y\\z' }, null, null, null, [1, { a: null }], 'a "string" result', '{"not": "an object"}', 0]);
        const attemptLogs = await Promise.all(claimed.map(async (c) => (await engine.getAttempts(c.id))[0]!.logs));
        expect(attemptLogs).toEqual([null, null, null, logs, logs, null, null, null]);
      });

      it('refuses a stale token, another worker, and a repeat within the batch, changing nothing', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 1000 });
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w1 = await worker();
        const w2 = await worker();
        const [c1] = await engine.claim(w1, [{ name: 'q', weight: 1 }], 1);
        clock.advance(1000); // the lease runs out; the rescuer hands the task on
        expect(await engine.rescueExpired()).toBe(1);
        clock.advance(1000); // past the backoff
        await engine.promoteDue();
        const [c2] = await engine.claim(w2, [{ name: 'q', weight: 1 }], 1);
        expect(c2!.attempt).toBe(2);
        const before = await engine.getTask(c1!.id);
        expect(await engine.settle(w1, [{ id: c1!.id, attempt: 1, status: 'succeeded', result: 'late' }])).toEqual(['stale']);
        expect(await engine.settle(w1, [{ id: c1!.id, attempt: 2, status: 'succeeded', result: 'forged' }])).toEqual(['stale']);
        expect(await engine.settle(w1, [{ id: c1!.id, attempt: 1, status: 'failed', error: { message: 'late' } }])).toEqual(['stale']);
        expect(await engine.getTask(c1!.id)).toEqual(before);
        expect(
          await engine.settle(w2, [
            { id: c2!.id, attempt: 2, status: 'succeeded', result: 'ok' },
            { id: c2!.id, attempt: 2, status: 'succeeded', result: 'again' },
            { id: '999999', attempt: 1, status: 'succeeded' },
            { id: 'not-an-id', attempt: 1, status: 'succeeded' },
          ]),
        ).toEqual(['accepted', 'stale', 'stale', 'stale']);
        expect((await engine.getTask(c2!.id)).result).toBe('ok');
      });

      it('settles and claims in one call: results first, then the next tasks from every queue', async () => {
        const { engine, worker } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 0 } });
        await engine.enqueue([{ type: 'a', queue: 'q1' }, { type: 'b', queue: 'q1' }, { type: 'c', queue: 'q2' }, { type: 'd', queue: 'q2' }]);
        const w = await worker(['q1', 'q2']);
        const both = [{ name: 'q1', weight: 1 }, { name: 'q2', weight: 1 }];
        const [a, b] = await engine.claim(w, [{ name: 'q1', weight: 1 }], 2);
        const { outcomes, tasks } = await engine.settleAndClaim(w, [
          { id: a!.id, attempt: 1, status: 'succeeded', result: 'A' },
          { id: b!.id, attempt: 1, status: 'failed', error: { message: 'again' } },
        ], both, 10);
        expect(outcomes).toEqual(['accepted', 'accepted']);
        expect(tasks.map((t) => [t.type, t.attempt]).sort()).toEqual([['b', 2], ['c', 1], ['d', 1]]);
        expect((await engine.getTask(a!.id)).result).toBe('A');
        const none = await engine.settleAndClaim(w, tasks.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const })), both, 10);
        expect(none).toEqual({ outcomes: ['accepted', 'accepted', 'accepted'], tasks: [] });
        expect(await engine.listTasks({ states: ['succeeded'], limit: 10 })).toHaveLength(4);
      });

      it('answers the tasks claimed with results in claim order too', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([
          { type: 'first', queue: 'q', priority: 9 },
          { type: 'p1', queue: 'q', priority: 1 },
          { type: 'p5-late', queue: 'q', priority: 5, runAt: new Date(T0.getTime() - 1000) },
          { type: 'p3', queue: 'q', priority: 3 },
          { type: 'p5-early', queue: 'q', priority: 5, runAt: new Date(T0.getTime() - 2000) },
        ]);
        const w = await worker();
        const [first] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(first!.type).toBe('first');
        const { outcomes, tasks } = await engine.settleAndClaim(w, [{ id: first!.id, attempt: 1, status: 'succeeded' }], [{ name: 'q', weight: 1 }], 10);
        expect(outcomes).toEqual(['accepted']);
        expect(tasks.map((t) => t.type)).toEqual(['p5-early', 'p5-late', 'p3', 'p1']);
      });

      it('hands back claimed tasks that never reached their worker, at once', async () => {
        const { engine, worker } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 60_000 } });
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }]);
        const w = await worker();
        const [kept, lost] = await engine.claim(w, [{ name: 'q', weight: 1 }], 2);
        expect(await engine.releaseClaimed(w, [lost!])).toBe(1);
        // Never ran: queued again at once, and the attempt does not count against the budget.
        expect(await engine.getTask(lost!.id)).toMatchObject({ state: 'queued', leaseLosses: 0, attempt: 1, attemptBase: 1 });
        expect(await attemptsOf(engine, lost!.id)).toEqual(['abandoned']);
        expect((await engine.getTask(kept!.id)).state).toBe('running');
        expect(await engine.releaseClaimed(await worker(), [kept!])).toBe(0); // not its task
        expect(await engine.releaseClaimed(w, [{ id: kept!.id, attempt: 2 }])).toBe(0); // not its attempt
        // A worker gives a task back unstarted with a `released` report; a retry of it is a duplicate.
        const released = { id: kept!.id, attempt: 1, status: 'released' as const };
        expect(await engine.settle(w, [released])).toEqual(['accepted']);
        expect(await engine.getTask(kept!.id)).toMatchObject({ state: 'queued', attemptBase: 1 });
        expect(await engine.settle(w, [released])).toEqual(['duplicate']);
        const [again] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(again).toMatchObject({ attempt: 2, attemptsLeft: 4 });
      });

      it('answers a repeated report of a settled attempt as duplicate, not stale', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }]);
        const w = await worker();
        const [a, b] = await engine.claim(w, [{ name: 'q', weight: 1 }], 2);
        const reports = [
          { id: a!.id, attempt: 1, status: 'succeeded' as const, result: 1 },
          { id: b!.id, attempt: 1, status: 'failed' as const, error: { message: 'x' } },
        ];
        expect(await engine.settle(w, reports)).toEqual(['accepted', 'accepted']);
        expect(await engine.settle(w, reports)).toEqual(['duplicate', 'duplicate']);
        const other = await worker();
        expect(await engine.settle(other, reports)).toEqual(['stale', 'stale']);
      });

      it('accepts the result of an attempt whose lease just ran out but was not yet rescued', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 1000 });
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        clock.advance(5000);
        expect(await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'succeeded' }])).toEqual(['accepted']);
        expect(await engine.rescueExpired()).toBe(0);
        expect((await engine.getTask(c!.id)).state).toBe('succeeded');
      });

      it('retries a failure after its backoff, recording the attempt with its error', async () => {
        const { engine, worker, clock } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q', backoff: { type: 'linear', delayMs: 500 } }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'failed', error: { message: 'boom', stack: 'Error: boom\n  at x' } }])).toEqual(['accepted']);
        const t = await engine.getTask(c!.id);
        expect(t).toMatchObject({ state: 'retrying', workerId: null, lastError: { message: 'boom', stack: 'Error: boom\n  at x', attempt: 1 } });
        expect(t.runAt.getTime()).toBe(T0.getTime() + 500);
        expect(await engine.getAttempts(c!.id)).toEqual([
          expect.objectContaining({ attempt: 1, outcome: 'failed', workerId: w, error: { message: 'boom', stack: 'Error: boom\n  at x', retryable: true } }),
        ]);
        // Not due one millisecond early; due exactly at its run time.
        clock.advance(499);
        expect(await engine.promoteDue()).toBe(0);
        clock.advance(1);
        expect(await engine.promoteDue()).toBe(1);
        const [c2] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(c2).toMatchObject({ id: c!.id, attempt: 2, attemptsLeft: 3 });
        await engine.settle(w, [{ id: c!.id, attempt: 2, status: 'failed', error: { message: 'again' } }]);
        expect((await engine.getTask(c!.id)).runAt.getTime()).toBe(clock.now().getTime() + 1000); // linear: 2 × 500
      });

      it('goes dead after the last attempt, and straight to dead when not retryable', async () => {
        const { engine, worker } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 0 } });
        const [a, b] = await engine.enqueue([{ type: 'a', queue: 'q', maxAttempts: 2 }, { type: 'b', queue: 'q', maxAttempts: 5 }]);
        const w = await worker();
        for (let attempt = 1; attempt <= 2; attempt++) {
          const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
          expect(c).toMatchObject({ id: a!.task.id, attempt });
          await engine.settle(w, [{ id: c!.id, attempt, status: 'failed', error: { message: `fail ${attempt}` } }]);
          // A zero delay requeues at once, without passing through `retrying`.
          expect((await engine.getTask(a!.task.id)).state).toBe(attempt === 1 ? 'queued' : 'dead');
        }
        expect(await engine.getTask(a!.task.id)).toMatchObject({ state: 'dead', deadReason: 'exhausted', lastError: { message: 'fail 2' } });
        const [cb] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        await engine.settle(w, [{ id: cb!.id, attempt: 1, status: 'failed', error: { message: 'bad input' }, retryable: false }]);
        expect(await engine.getTask(b!.task.id)).toMatchObject({ state: 'dead', deadReason: 'unrecoverable' });
        expect(await attemptsOf(engine, b!.task.id)).toEqual(['failed']);
      });

      it('retries after the delay the handler asked for instead of the backoff', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'failed', error: { message: 'rate limited' }, retryAfterMs: 42_000 }]);
        const t = await engine.getTask(c!.id);
        expect(t.state).toBe('retrying');
        expect(t.runAt.getTime()).toBe(T0.getTime() + 42_000);
      });
    });

    describe('leases, heartbeats and lost workers', () => {
      it('rescues a lease exactly when it expires, not a millisecond before', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 10_000 });
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        clock.advance(9_999);
        expect(await engine.rescueExpired()).toBe(0);
        expect((await engine.getTask(c!.id)).state).toBe('running');
        clock.advance(1);
        expect(await engine.rescueExpired()).toBe(1);
        const t = await engine.getTask(c!.id);
        expect(t).toMatchObject({ state: 'retrying', leaseLosses: 1, workerId: null });
        expect(t.lastError!.message).toMatch(/lease expired/);
        expect(await attemptsOf(engine, c!.id)).toEqual(['lease_expired']);
      });

      it('sends a task whose last attempt lost its lease to the dead-letter queue', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 1000, poisonAfter: 10 });
        await engine.enqueue([{ type: 't', queue: 'q', maxAttempts: 1 }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        clock.advance(1000);
        await engine.rescueExpired();
        expect(await engine.getTask(c!.id)).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
      });

      it('quarantines a task whose workers keep dying, before its attempts run out', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 1000, poisonAfter: 3, defaultBackoff: { type: 'fixed', delayMs: 0 } });
        const { task } = (await engine.enqueue([{ type: 'crasher', queue: 'q', maxAttempts: 10 }]))[0]!;
        const w = await worker();
        for (let i = 1; i <= 3; i++) {
          const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
          expect(c!.attempt).toBe(i);
          clock.advance(1000);
          expect(await engine.rescueExpired()).toBe(1);
        }
        expect(await engine.getTask(task.id)).toMatchObject({ state: 'dead', deadReason: 'poison', leaseLosses: 3, attempt: 3 });
        expect(await attemptsOf(engine, task.id)).toEqual(['lease_expired', 'lease_expired', 'lease_expired']);
      });

      it('ends an attempt by one rule, the first that applies, for failure reports and rescues alike', async () => {
        // NEXT_STATE_AFTER_FAILURE (sql/tasks/nextState.ts): cancelled, then unrecoverable,
        // poison, exhausted. Every task here is on its last attempt and has more than one reason.
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 1000, poisonAfter: 1 });
        await engine.enqueue([1, 2, 3, 4].map((n) => ({ type: 't', queue: 'q', maxAttempts: 1, priority: -n })));
        const w = await worker();
        const [a, b, c, d] = await engine.claim(w, [{ name: 'q', weight: 1 }], 4);
        await engine.cancelTask(a!.id);
        await engine.cancelTask(c!.id);
        await engine.settle(w, [
          { id: a!.id, attempt: 1, status: 'failed', error: { message: 'x' }, retryable: false },
          { id: b!.id, attempt: 1, status: 'failed', error: { message: 'x' }, retryable: false },
        ]);
        clock.advance(1000);
        expect(await engine.rescueExpired()).toBe(2);
        const ended = await Promise.all([a, b, c, d].map((t) => engine.getTask(t!.id)));
        expect(ended.map((t) => [t.state, t.deadReason])).toEqual([
          ['cancelled', null], ['dead', 'unrecoverable'], ['cancelled', null], ['dead', 'poison'],
        ]);
        expect(ended.map((t) => t.finishedAt!.getTime() - T0.getTime())).toEqual([0, 0, 1000, 1000]);
        for (const t of ended) expect(t.runAt.getTime()).toBe(T0.getTime());
      });

      it('handler failures do not count towards quarantine', async () => {
        const { engine, worker } = await setup({ poisonAfter: 1, defaultBackoff: { type: 'fixed', delayMs: 0 } });
        await engine.enqueue([{ type: 't', queue: 'q', maxAttempts: 3 }]);
        const w = await worker();
        for (let attempt = 1; attempt <= 2; attempt++) {
          const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
          await engine.settle(w, [{ id: c!.id, attempt, status: 'failed', error: { message: 'x' } }]);
        }
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(c!.attempt).toBe(3);
      });

      it('heartbeats renew every lease the worker holds and report cancellations', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 10_000 });
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q', timeoutMs: 60_000 }]);
        const w = await worker();
        const claimed = await engine.claim(w, [{ name: 'q', weight: 1 }], 2);
        clock.advance(9_000);
        await engine.cancelTask(claimed[1]!.id);
        const hb = await engine.heartbeat(w);
        expect(hb.held.sort()).toEqual(claimed.map((c) => c.id).sort());
        expect(hb.cancel).toEqual([claimed[1]!.id]);
        clock.advance(9_000); // 18 s after the claim: only the renewal keeps the first lease
        expect(await engine.rescueExpired()).toBe(0);
        const t = await engine.getTask(claimed[0]!.id);
        expect(t.leaseExpiresAt!.getTime()).toBe(T0.getTime() + 9_000 + 10_000);
      });

      it('renews only the leases of the tasks a heartbeat lists; an unlisted one runs out', async () => {
        const { engine, worker, clock } = await setup({ defaultTimeoutMs: 10_000 });
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }]);
        const w = await worker();
        const [known, orphan] = await engine.claim(w, [{ name: 'q', weight: 1 }], 2);
        clock.advance(6_000);
        const hb = await engine.heartbeat(w, [known!.id]);
        expect(hb.held.sort()).toEqual([known!.id, orphan!.id].sort());
        clock.advance(4_000);
        expect(await engine.rescueExpired()).toBe(1);
        expect((await engine.getTask(orphan!.id)).state).toBe('retrying');
        expect((await engine.getTask(known!.id)).state).toBe('running');
      });

      it('refuses heartbeats from unknown and deregistered workers', async () => {
        const { engine, worker } = await setup();
        await expect(engine.heartbeat(crypto.randomUUID())).rejects.toBeInstanceOf(NotFoundError);
        await expect(engine.heartbeat('nope')).rejects.toBeInstanceOf(NotFoundError);
        const w = await worker();
        await engine.deregisterWorker(w);
        await expect(engine.heartbeat(w)).rejects.toBeInstanceOf(InvalidStateError);
      });

      it('requeues the tasks of a worker that stops heartbeating at once, not after the lease', async () => {
        const { engine, worker, clock } = await setup({ workerTtlMs: 15_000, defaultTimeoutMs: 3_600_000, defaultBackoff: { type: 'fixed', delayMs: 60_000 } });
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }]);
        const dying = await worker(['q'], 'dying');
        const [c] = await engine.claim(dying, [{ name: 'q', weight: 1 }], 1);
        clock.advance(14_999);
        expect(await engine.reapLostWorkers()).toEqual({ workers: 0, tasks: 0 });
        clock.advance(1);
        expect(await engine.reapLostWorkers()).toEqual({ workers: 1, tasks: 1 });
        expect((await engine.getWorker(dying)).state).toBe('lost');
        expect(await engine.getTask(c!.id)).toMatchObject({ state: 'queued', leaseLosses: 1 });
        expect(await attemptsOf(engine, c!.id)).toEqual(['worker_lost']);
        // Its late result is refused; a heartbeat brings the worker back, with nothing held.
        expect(await engine.settle(dying, [{ id: c!.id, attempt: 1, status: 'succeeded' }])).toEqual(['stale']);
        expect(await engine.heartbeat(dying)).toEqual({ held: [], cancel: [] });
        expect((await engine.getWorker(dying)).state).toBe('active');
      });

      it('hands back what a deregistering worker holds, without counting it as a crash', async () => {
        const { engine, worker } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 60_000 } });
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(await engine.deregisterWorker(w)).toEqual({ released: 1 });
        expect(await engine.deregisterWorker(w)).toEqual({ released: 0 });
        expect(await engine.getTask(c!.id)).toMatchObject({ state: 'queued', leaseLosses: 0 });
        expect(await attemptsOf(engine, c!.id)).toEqual(['abandoned']);
        expect(await engine.getWorker(w)).toMatchObject({ state: 'stopped', running: 0 });
        await expect(engine.deregisterWorker(crypto.randomUUID())).rejects.toBeInstanceOf(NotFoundError);
      });

      it('refunds what a deregistering worker holds but did not list as started; a listed task uses its attempt', async () => {
        const { engine, worker } = await setup();
        const q = [{ name: 'q', weight: 1 }];
        const at = (ms: number) => new Date(T0.getTime() + ms);
        const [a, b, c] = (await engine.enqueue([
          { type: 'a', queue: 'q', maxAttempts: 2, runAt: at(-3000) },
          { type: 'b', queue: 'q', maxAttempts: 1, runAt: at(-2000) },
          { type: 'c', queue: 'q', maxAttempts: 1, runAt: at(-1000) },
          { type: 'later', queue: 'q' },
        ])).map((r) => r.task);
        const w = await worker();
        expect((await engine.claim(w, q, 3)).map((t) => t.type)).toEqual(['a', 'b', 'c']);
        // A started; B never reached the worker (a claim answer lost as it stopped); C is listed
        // at another attempt than the one held, so that attempt did not start either.
        expect(await engine.deregisterWorker(w, [{ id: a!.id, attempt: 1 }, { id: c!.id, attempt: 2 }])).toEqual({ released: 3 });
        expect(await engine.getTask(a!.id)).toMatchObject({ state: 'queued', attempt: 1, attemptBase: 0, leaseLosses: 0, lastError: { message: 'worker deregistered before reporting a result' } });
        for (const t of [b!, c!]) {
          // Queued again with the attempt refunded: attempts used as before the claim (0 of 1).
          expect(await engine.getTask(t.id)).toMatchObject({
            state: 'queued', attempt: 1, attemptBase: 1, leaseLosses: 0, runAt: t.runAt,
            lastError: { message: 'handed back without running (the worker deregistered without having started it)' },
          });
        }
        for (const t of [a!, b!, c!]) expect(await attemptsOf(engine, t.id)).toEqual(['abandoned']);
        expect(await engine.getWorker(w)).toMatchObject({ state: 'stopped', running: 0 });
        // Each keeps its place in line, ahead of the task that was behind it; B and C have their
        // one attempt still to make.
        const next = await engine.claim(await worker(), q, 4);
        expect(next.map((t) => [t.type, t.attempt, t.attemptsLeft])).toEqual([['a', 2, 0], ['b', 2, 0], ['c', 2, 0], ['later', 1, 4]]);
      });

      it('uses up the attempt of every held task when the deregistering worker lists none as started, or lists nothing', async () => {
        const { engine, worker } = await setup();
        const q = [{ name: 'q', weight: 1 }];
        const [x, y] = (await engine.enqueue([{ type: 'x', queue: 'q', maxAttempts: 1 }, { type: 'y', queue: 'q', maxAttempts: 1 }])).map((r) => r.task);
        const listing = await worker();
        await engine.claim(listing, q, 1);
        // An empty list: nothing started, so the held task is refunded.
        expect(await engine.deregisterWorker(listing, [])).toEqual({ released: 1 });
        expect(await engine.getTask(x!.id)).toMatchObject({ state: 'queued', attemptBase: 1 });
        // No list (an older worker, curl): every held task counts as started; its last attempt is spent.
        const silent = await worker();
        expect((await engine.claim(silent, q, 2)).map((t) => t.id)).toEqual([x!.id, y!.id]);
        expect(await engine.deregisterWorker(silent)).toEqual({ released: 2 });
        for (const t of [x!, y!]) expect(await engine.getTask(t.id)).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
      });
    });

    describe('cancel, retry, update', () => {
      it('cancels waiting tasks at once and refuses finished ones', async () => {
        const { engine } = await setup();
        const [q, s] = await engine.enqueue([{ type: 't' }, { type: 't', delayMs: 60_000 }]);
        expect((await engine.cancelTask(q!.task.id)).state).toBe('cancelled');
        expect((await engine.cancelTask(s!.task.id)).state).toBe('cancelled');
        await expect(engine.cancelTask(q!.task.id)).rejects.toBeInstanceOf(InvalidStateError);
        await expect(engine.cancelTask('123456789')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('flags a running task; its failure then ends it as cancelled, not retried', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }]);
        const w = await worker();
        const [a, b] = await engine.claim(w, [{ name: 'q', weight: 1 }], 2);
        expect(await engine.cancelTask(a!.id)).toMatchObject({ state: 'running', cancelRequested: true });
        await engine.cancelTask(b!.id);
        await engine.settle(w, [
          { id: a!.id, attempt: 1, status: 'failed', error: { message: 'aborted' } },
          { id: b!.id, attempt: 1, status: 'succeeded', result: 'finished anyway' },
        ]);
        expect(await engine.getTask(a!.id)).toMatchObject({ state: 'cancelled', cancelRequested: false });
        expect(await attemptsOf(engine, a!.id)).toEqual(['cancelled']);
        expect(await engine.getTask(b!.id)).toMatchObject({ state: 'succeeded', result: 'finished anyway' });
      });

      it('retries dead and cancelled tasks with a fresh budget; the fencing token keeps counting', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q', maxAttempts: 1 }]);
        const w = await worker();
        const [c] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'failed', error: { message: 'x' } }]);
        expect((await engine.getTask(c!.id)).state).toBe('dead');
        expect(await engine.retryTask(c!.id)).toMatchObject({ state: 'queued', attemptBase: 1, deadReason: null });
        const [again] = await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
        expect(again).toMatchObject({ attempt: 2, attemptsLeft: 0 });
        await expect(engine.retryTask(c!.id)).rejects.toBeInstanceOf(InvalidStateError);
      });

      it('changes priority and run time while waiting, not while running', async () => {
        const { engine, worker } = await setup();
        const [a] = await engine.enqueue([{ type: 't', queue: 'q' }]);
        const later = new Date(T0.getTime() + 60_000);
        expect(await engine.updateTask(a!.task.id, { priority: 9, runAt: later })).toMatchObject({ priority: 9, state: 'scheduled', runAt: later });
        expect(await engine.updateTask(a!.task.id, { runAt: T0 })).toMatchObject({ state: 'queued' });
        const [c] = await engine.claim(await worker(), [{ name: 'q', weight: 1 }], 1);
        await expect(engine.updateTask(c!.id, { priority: 1 })).rejects.toBeInstanceOf(InvalidStateError);
      });
    });

    describe('dead-letter queue', () => {
      async function deadTasks(n: number, queue = 'q') {
        const env = await setup();
        const made = await env.engine.enqueue(Array.from({ length: n }, () => ({ type: 't', queue, maxAttempts: 1 })));
        const w = await env.worker([queue]);
        const claimed = await env.engine.claim(w, [{ name: queue, weight: 1 }], n);
        await env.engine.settle(w, claimed.map((c) => ({ id: c.id, attempt: c.attempt, status: 'failed' as const, error: { message: 'x' } })));
        return { ...env, ids: made.map((m) => m.task.id), w };
      }

      it('requeues by id with an outcome per id', async () => {
        const { engine, ids } = await deadTasks(2);
        const [queued] = await engine.enqueue([{ type: 't', queue: 'q' }]);
        expect(await engine.requeueDead([ids[0]!, queued!.task.id, '987654321', 'junk'])).toEqual(['requeued', 'invalid_state', 'not_found', 'not_found']);
        expect((await engine.getTask(ids[0]!)).state).toBe('queued');
        expect((await engine.getTask(ids[1]!)).state).toBe('dead');
      });

      it('requeues all of a queue, and purges', async () => {
        const { engine, ids } = await deadTasks(3);
        expect(await engine.requeueDeadWhere({ queue: 'elsewhere' })).toBe(0);
        expect(await engine.requeueDeadWhere({ queue: 'q' })).toBe(3);
        const w = (await engine.registerWorker({ name: 'w', queues: [{ name: 'q', weight: 1 }], concurrency: 5 })).id;
        const claimed = await engine.claim(w, [{ name: 'q', weight: 1 }], 5);
        await engine.settle(w, claimed.map((c) => ({ id: c.id, attempt: c.attempt, status: 'failed' as const, error: { message: 'y' }, retryable: false })));
        expect(await engine.purgeDead({ queue: 'q' })).toBe(3);
        await expect(engine.getTask(ids[0]!)).rejects.toBeInstanceOf(NotFoundError);
        expect(await engine.getAttempts(ids[0]!)).toEqual([]);
      });
    });

    describe('queues, workers and listing', () => {
      it('counts tasks per state and the age of the oldest ready one', async () => {
        const { engine, clock } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        clock.advance(5000);
        await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q', delayMs: 1000 }, { type: 't', queue: 'r' }]);
        clock.advance(1000);
        const [q, r] = await engine.listQueues();
        expect(q).toMatchObject({ name: 'q', paused: false, counts: { queued: 2, scheduled: 1 }, oldestReadyAgeMs: 6000 });
        expect(r).toMatchObject({ name: 'r', counts: { queued: 1 }, oldestReadyAgeMs: 1000 });
        await expect(engine.getQueue('nope')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('lists tasks newest first with filters and a cursor', async () => {
        const { engine, clock } = await setup();
        await engine.enqueue([{ type: 'a', queue: 'q1', tags: ['red'] }, { type: 'b', queue: 'q2' }]);
        clock.advance(60_000);
        await engine.enqueue([{ type: 'a', queue: 'q1', tags: ['red', 'blue'] }, { type: 'c', queue: 'q1', delayMs: 10 }]);
        const all = await engine.listTasks({ limit: 10 });
        expect(all.map((t) => t.type)).toEqual(['c', 'a', 'b', 'a']);
        expect((await engine.listTasks({ limit: 10, tag: 'red' })).map((t) => t.type)).toEqual(['a', 'a']);
        expect((await engine.listTasks({ limit: 10, states: ['scheduled'] })).map((t) => t.type)).toEqual(['c']);
        expect((await engine.listTasks({ limit: 10, queue: 'q1', type: 'a' }))).toHaveLength(2);
        expect((await engine.listTasks({ limit: 10, createdFrom: new Date(T0.getTime() + 1) })).map((t) => t.type)).toEqual(['c', 'a']);
        expect((await engine.listTasks({ limit: 10, createdBefore: new Date(T0.getTime() + 1) })).map((t) => t.type)).toEqual(['b', 'a']);
        const page1 = await engine.listTasks({ limit: 3 });
        const page2 = await engine.listTasks({ limit: 3, beforeId: page1.at(-1)!.id });
        expect([...page1, ...page2].map((t) => t.id)).toEqual(all.map((t) => t.id));
      });

      it('lists workers with what they hold', async () => {
        const { engine, worker } = await setup();
        await engine.enqueue([{ type: 't', queue: 'q' }]);
        const a = await worker(['q'], 'a');
        await engine.claim(a, [{ name: 'q', weight: 1 }], 1);
        const b = await worker(['q'], 'b');
        await engine.deregisterWorker(b);
        const list = await engine.listWorkers({ limit: 10 });
        expect(list.map((w) => [w.name, w.state, w.running])).toEqual(expect.arrayContaining([['a', 'active', 1], ['b', 'stopped', 0]]));
        expect(await engine.listWorkers({ limit: 10, states: ['stopped'] })).toHaveLength(1);
      });
    });
  });
}
