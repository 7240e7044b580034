/**
 * Logs a person can read: a database error is logged with its message, SQLSTATE and the name of
 * the statement that failed; never the driver's client object (node-postgres's pool hangs it on
 * the errors of idle connections, with the text of every prepared statement), never SQL text,
 * no line over 2 KB. Real PostgreSQL: a pool connection terminated by the server, and a named
 * statement that fails.
 */
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgres, type Database } from '@taskflow/core';
import { dropSchema, freshSchema, TEST_DATABASE_URL } from '@taskflow/core/test-support';
import { createLogger } from '../src/logging.ts';

/** A logger writing its lines to an array, and a wait for the first line matching `re`. */
function capture() {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        for (const w of waiters.filter((x) => x.re.test(line))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      done();
    },
  });
  const next = (re: RegExp) => new Promise<string>((resolve) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) resolve(seen);
    else waiters.push({ re, resolve });
  });
  return { logger: createLogger('debug', stream), lines, next };
}

function expectReadable(line: string) {
  expect(line.length).toBeLessThan(2048);
  expect(line).not.toMatch(/SELECT|INSERT INTO|UPDATE |"client"|_connectionCallback|"connection":/);
}

describe('database errors in the log (PostgreSQL)', () => {
  const schema = freshSchema('tfl');
  const opened: Database[] = [];
  afterAll(async () => {
    for (const db of opened) await db.close();
    await dropSchema(schema);
  });

  it('an idle connection the server terminates: message and SQLSTATE, no client object, no SQL', async () => {
    const log = capture();
    const db = await openPostgres({ connectionString: TEST_DATABASE_URL, schema, poolSize: 1, logger: log.logger });
    opened.push(db);
    // A prepared statement on the connection, whose text a dump of the client would carry.
    const { rows } = await db.query<{ pid: number }>({ name: 'tf_test_backend_pid', text: 'SELECT pg_backend_pid() AS pid' });
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    const line = await log.next(/idle PostgreSQL connection failed/);
    expectReadable(line);
    const entry = JSON.parse(line) as { err: { message: string; code: string; type: string } };
    expect(entry.err).toMatchObject({ type: 'DatabaseUnavailableError', code: '57P01' });
    expect(entry.err.message).toMatch(/terminating connection due to administrator command/);
    // The pool works again with a new connection.
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a named statement that fails: its name and SQLSTATE, not its text', async () => {
    const log = capture();
    const db = await openPostgres({ connectionString: TEST_DATABASE_URL, schema, poolSize: 1, logger: log.logger });
    opened.push(db);
    const err = await db.query({ name: 'tf_test_broken', text: 'SELECT no_such_column FROM no_such_table WHERE id = $1' }, [1]).catch((e: unknown) => e);
    log.logger.error({ err }, 'request failed');
    const line = await log.next(/request failed/);
    expectReadable(line);
    const entry = JSON.parse(line) as { err: { code: string; statement: string; message: string; stack?: string } };
    expect(entry.err).toMatchObject({ code: '42P01', statement: 'tf_test_broken', message: expect.stringMatching(/no_such_table/) });
    expect(entry.err.stack).toBeDefined();
  });

  it('bounds what any error may bring: a long message, a long cause chain', () => {
    const log = capture();
    let err: Error = new Error('x'.repeat(10_000));
    for (let i = 0; i < 10; i++) err = new Error(`level ${i} ${'y'.repeat(5000)}`, { cause: err });
    Object.assign(err, { client: { text: 'SELECT secret FROM t', values: ['v'.repeat(5000)] } });
    log.logger.error({ err }, 'boom');
    expect(log.lines).toHaveLength(1);
    expectReadable(log.lines[0]!);
  });
});
