/**
 * The database's own cost of the hot path, in instructions rather than seconds: PostgreSQL in
 * single-user mode (`postgres --single`, one process, no client) under valgrind's callgrind,
 * which counts the instructions executed. The count does not depend on what else the machine
 * is doing (two runs of the same script measured 0.05% apart on a loaded machine), so a change
 * of a few percent in the database's work shows, where the timed benches drown it in noise.
 *
 *   npm run pg-instructions -- [--n 20000] [--batch 250] [--variants base,before-0015,analyzed,limited,limited-analyzed,observed,fillfactor40,queue-hash-ready] [--functions 30 [--inclusive]]
 *
 * For each variant, three scripts are run from a fresh copy of one scratch cluster:
 * - `zero`: the engine's migrations (packages/core/migrations), the variant's change, a worker
 *   and the queue, the engine's statements PREPAREd; no task;
 * - `insert`: the same, then N tasks in inserts of 1,000 (`statements.insertWithoutKeysKnownQueues`
 *   of `@taskflow/core/internal`, the bulk enqueue's statement, rows as the engine writes them);
 * - `cycle`: the same, then one `statements.claim` of 250 and `statements.succeedAndClaim`s
 *   (250 results, a claim of 250) until every task has succeeded, as the drain does; `--batch`
 *   sets the claim's size (e.g. 5: a worker with few slots, each claim carrying the last
 *   claim's results, what a trickle of tasks costs per statement).
 * Instructions per task: (insert − zero) / N for the insert, (cycle − insert) / N for the claim
 * and the settlement. Each script ends by checking that all N tasks are in the expected state.
 *
 * Variants are schema changes applied after the migrations, to weigh a change before writing
 * its migration:
 * - base: the schema as the migrations leave it;
 * - before-0015: the schema before migration 0015 (tasks_leases and tasks_running_worker where
 *   tasks_running is now, the column checks as CHECK constraints of the table);
 * - fillfactor40: `tasks` with fillfactor 40 (room on each page for a task's later versions);
 * - merged-dead: tasks_dead folded into tasks_unfinished (state, id) (one index fewer for every
 *   statement that writes tasks to open and check);
 * - column-order: `tasks` made again with its fixed-width NOT NULL columns first, then the other
 *   columns an index reads (what a table rewrite for column order would save);
 * - queue-hash-ready: tasks_ready keyed by hashtext(queue) instead of queue (a fixed-width
 *   first column). The claim statement cannot use that index, so only its insert is measured.
 * - no-finished-index, brin-every-row, btree-finished: the analytics rollup's index on
 *   tasks.finished_at (migration 0006, a partial BRIN) dropped, or made a BRIN of every row,
 *   or a partial B-tree.
 * - observed: no schema change; the claim and succeedAndClaim an engine with a telemetry
 *   observer (the server's metrics) runs: they also return each task's queue wait and
 *   attempt duration (sql/tasks/claim.ts, settle.ts).
 * - limited: no schema change; every task has a concurrency key (100 keys, in turn) and the
 *   queue a per-key limit that never binds: the first claim is the flow claim
 *   (queueLockForClaim and taskClaimLimited in a transaction, sql/flow.ts); each batch of
 *   successes is then settled by `statements.succeedAndClaim` with a claim of 0 (the plain claim
 *   skips a limited queue) and followed by the next flow claim, as the engine does for a limited
 *   queue (engine/settle.ts).
 * - analyzed, limited-analyzed: base and limited with the tables ANALYZEd after the inserts, as
 *   autovacuum leaves them on a live server (a fresh cluster has no statistics). A prepared
 *   statement's plan cache weighs its generic plan against custom ones by the planner's
 *   estimates, which the statistics change: this variant runs what a live server runs. Its
 *   insert figure includes the ANALYZE.
 * - keyed: no schema change; every task has an idempotency key (`sdk:` and a UUID, as the SDK
 *   makes up), inserted by the statement for batches with keys into known queues
 *   (`statements.insertKnownQueues`: each key written to task_idempotency_keys with ON
 *   CONFLICT, the task after it). Claims and settlements do not touch the keys.
 *
 * Needs valgrind and PostgreSQL's server binaries (`initdb`, `postgres`; found under
 * /usr/lib/postgresql/<version>/bin, or --pg-bin), and to run as root or as the `postgres` OS
 * user: the scratch cluster (in the system's temporary directory, removed at the end) is
 * owned by `postgres`. It runs two scripts at a time; about a minute per script on 2 cores.
 */
import { parseArgs } from 'node:util';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statements as S, successesJson } from '@taskflow/core/internal';
import { noopInsertParams } from './lib/insert-params.ts';
import { fmt, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '250' },
    variants: { type: 'string', default: 'base,before-0015' },
    'pg-bin': { type: 'string' },
    functions: { type: 'string', default: '0' },
    inclusive: { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const BATCH = Number(args.batch);
if (!Number.isInteger(N) || N <= 0 || N % 1000 !== 0) throw new Error('--n: a positive multiple of 1000');
if (!Number.isInteger(BATCH) || BATCH <= 0 || N % BATCH !== 0) throw new Error('--batch: a whole number above 0 that divides --n');

const VARIANTS: Record<string, { sql: string[]; cycle: boolean; keyed?: boolean; observed?: boolean; limited?: boolean; analyzed?: boolean; upTo?: number }> = {
  base: { sql: [], cycle: true },
  analyzed: { sql: [], cycle: true, analyzed: true },
  // The schema before migration 0015 (two indexes on the running set, CHECK constraints).
  'before-0015': { sql: [], cycle: true, upTo: 14 },
  limited: { sql: [], cycle: true, limited: true },
  'limited-analyzed': { sql: [], cycle: true, limited: true, analyzed: true },
  observed: { sql: [], cycle: true, observed: true },
  keyed: { sql: [], cycle: true, keyed: true },
  // tasks made again with its fixed-width NOT NULL columns first, then the other columns that
  // an index reads, then the rest (each group in its present order): a measure of what a
  // table rewrite for column order would save (nocachegetattr walks a row up to the column).
  'column-order': {
    sql: [
      'DROP VIEW task_attempts',
      'ALTER TABLE tasks RENAME TO tasks_old',
      `DO $$ DECLARE cols text; idx text[]; cons text[]; opts text[]; d text; BEGIN
        SELECT string_agg(format('%I %s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attidentity = 'a' THEN ' GENERATED ALWAYS AS IDENTITY' ELSE '' END,
                 CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                 CASE WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END), ', '
                 ORDER BY CASE WHEN a.attlen > 0 AND a.attnotnull THEN 0
                               WHEN a.attname IN ('state', 'queue', 'worker_id', 'lease_expires_at', 'finished_at', 'expires_at', 'concurrency_key', 'rate_key', 'workflow_id') THEN 1 ELSE 2 END, a.attnum)
          INTO cols FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE a.attrelid = 'tasks_old'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
        SELECT array_agg(pg_get_indexdef(indexrelid)) INTO idx FROM pg_index WHERE indrelid = 'tasks_old'::regclass AND NOT indisprimary;
        SELECT array_agg(pg_get_constraintdef(oid)) INTO cons FROM pg_constraint WHERE conrelid = 'tasks_old'::regclass AND contype = 'c';
        SELECT reloptions INTO opts FROM pg_class WHERE oid = 'tasks_old'::regclass;
        DROP TABLE tasks_old;
        EXECUTE format('CREATE TABLE tasks (%s, PRIMARY KEY (id))', cols);
        FOREACH d IN ARRAY coalesce(cons, '{}') LOOP EXECUTE format('ALTER TABLE tasks ADD %s', d); END LOOP;
        FOREACH d IN ARRAY idx LOOP EXECUTE replace(replace(d, ' ON pgi.tasks_old ', ' ON tasks '), ' ON tasks_old ', ' ON tasks '); END LOOP;
        EXECUTE format('ALTER TABLE tasks SET (%s)', array_to_string(opts, ', '));
      END $$`,
      `CREATE VIEW task_attempts AS SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs, trace_id FROM attempts UNION ALL SELECT id, attempt, worker_id, started_at, finished_at, CASE state WHEN 'running' THEN 'running' ELSE 'succeeded' END, NULL, logs, CASE state WHEN 'succeeded' THEN trace_id END FROM tasks WHERE started_at IS NOT NULL AND state IN ('running', 'succeeded')`,
    ],
    cycle: true,
  },
  'merged-dead': { sql: ['DROP INDEX tasks_dead', 'DROP INDEX tasks_unfinished', "CREATE INDEX tasks_unfinished ON tasks (state, id) WHERE state IN ('blocked', 'cancelled', 'retrying', 'scheduled', 'dead')"], cycle: true },
  fillfactor40: { sql: ['ALTER TABLE tasks SET (fillfactor = 40)'], cycle: true },
  'queue-hash-ready': {
    sql: ['DROP INDEX tasks_ready', "CREATE INDEX tasks_ready ON tasks (hashtext(queue), priority DESC, run_at, id) WHERE state = 'queued'"],
    cycle: false,
  },
  // The analytics rollup's time index on finished tasks (migration 0006: BRIN, partial)
  // weighed against none, a BRIN of every row and a B-tree.
  'no-finished-index': { sql: ['DROP INDEX tasks_finished_brin'], cycle: true },
  'brin-every-row': {
    sql: ['DROP INDEX tasks_finished_brin', 'CREATE INDEX tasks_finished_brin ON tasks USING brin (finished_at) WITH (pages_per_range = 32, autosummarize = on)'],
    cycle: true,
  },
  'btree-finished': {
    sql: ['DROP INDEX tasks_finished_brin', 'CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL'],
    cycle: true,
  },
};
const variants = args.variants!.split(',');
for (const v of variants) if (!VARIANTS[v]) throw new Error(`--variants: unknown ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);

function pgBin(): string {
  if (args['pg-bin']) return args['pg-bin'];
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'postgres'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries not found: pass --pg-bin');
}

/**
 * The parameter types of taskInsertMany: the thirteen column arrays, now, the three defaults,
 * the two trace columns, the four lifetime columns (expires_at, ttl_ms, unique_key, unique_for_ms).
 */
const INSERT_TYPES = 'text[], text[], jsonb, text[], text[], integer[], timestamptz[], float8[], integer[], text[], integer[], text[], text[], timestamptz, integer, jsonb, integer, text[], text[], timestamptz[], float8[], text[], float8[]';
/** The `limited` variant: concurrency keys the tasks go round (as `npm run flow`'s keyed drain). */
const LIMITED_KEYS = 100;
const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();
const WORKER = '00000000-0000-0000-0000-000000000001';

/** The statements of one script, each ending with `;` and a blank line (`postgres --single -j`). */
function script(variant: string, kind: 'zero' | 'insert' | 'cycle'): string {
  const upTo = VARIANTS[variant]!.upTo ?? Infinity;
  const migrations = readdirSync(fileURLToPath(new URL('../packages/core/migrations/', import.meta.url)))
    .filter((f) => f.endsWith('.sql') && Number(f.slice(0, 4)) <= upTo)
    .sort();
  const s: string[] = ['CREATE SCHEMA pgi', 'SET search_path = pgi'];
  for (const f of migrations) {
    const text = readFileSync(fileURLToPath(new URL(`../packages/core/migrations/${f}`, import.meta.url)), 'utf8');
    const code = text.split('\n').filter((l) => !l.trim().startsWith('--')).join('\n');
    // Statements end with ";" at the end of a line; a function body ($$ … $$) has none inside here.
    for (const stmt of code.split(/;\s*\n/)) if (stmt.trim()) s.push(stmt.trim().replace(/;$/, ''));
  }
  s.push(...VARIANTS[variant]!.sql);
  s.push(`INSERT INTO workers (id, name, queues, concurrency, state, expires_at) VALUES ('${WORKER}', 'pgi', '[{"name":"work"}]', 50, 'active', now() + interval '1 day')`);
  s.push("INSERT INTO queues (name) VALUES ('work')");
  const keyed = VARIANTS[variant]!.keyed === true;
  s.push(`PREPARE ins(${INSERT_TYPES}) AS ${oneLine((keyed ? S.insertKnownQueues : S.insertWithoutKeysKnownQueues).text)}`);
  const observed = VARIANTS[variant]!.observed === true;
  s.push(`PREPARE claim(text, integer, uuid, timestamptz) AS ${oneLine((observed ? S.claimObserved : S.claim).text)}`);
  s.push(`PREPARE sac(json, uuid, timestamptz, text, integer) AS ${oneLine((observed ? S.succeedAndClaimObserved : S.succeedAndClaim).text)}`);
  const limited = VARIANTS[variant]!.limited === true;
  if (limited) {
    s.push(`UPDATE queues SET key_max_running = 1000000 WHERE name = 'work'`);
    s.push(`PREPARE lock(text) AS ${oneLine(S.queueLockForClaim.text)}`);
    s.push(`PREPARE climit(text, integer, uuid, timestamptz) AS ${oneLine(S.claimLimited.text)}`);
  }
  if (kind !== 'zero') {
    for (let b = 0; b < N / 1000; b++) {
      // As the engine writes tasks that take every default (insertColumns in the engine).
      const params = noopInsertParams(b * 1000, 1000, 'work', keyed, limited ? LIMITED_KEYS : 0).map((p) => (p === null ? 'NULL' : quote(String(p))));
      s.push(`EXECUTE ins(${params.join(', ')})`);
    }
    if (VARIANTS[variant]!.analyzed) s.push('ANALYZE');
  }
  if (kind === 'cycle' && limited) {
    // As the engine settles and claims a limited queue (engine/settle.ts, flowClaim.ts): each
    // claim in a transaction after the queue's lock, the successes before the next in a statement
    // of their own (succeedAndClaim claiming nothing). The keys go round (task n has key n mod LIMITED_KEYS), so round by round
    // is id order here too.
    s.push('BEGIN', `EXECUTE lock('work')`, `EXECUTE climit('work', ${BATCH}, '${WORKER}', NULL)`, 'COMMIT');
    for (let k = 0; k < N / BATCH; k++) {
      const results = successesJson(Array.from({ length: BATCH }, (_, j) => ({ id: k * BATCH + j + 1, attempt: 1 })));
      s.push(`EXECUTE sac(${quote(results)}, '${WORKER}', NULL, 'work', 0)`);
      s.push('BEGIN', `EXECUTE lock('work')`, `EXECUTE climit('work', ${BATCH}, '${WORKER}', NULL)`, 'COMMIT');
    }
  } else if (kind === 'cycle') {
    // A fresh table: ids 1..N, claimed in id order (one priority, one run time per insert).
    s.push(`EXECUTE claim('work', ${BATCH}, '${WORKER}', NULL)`);
    for (let k = 0; k < N / BATCH; k++) {
      // As the engine sends successes without a result or logs.
      const results = successesJson(Array.from({ length: BATCH }, (_, j) => ({ id: k * BATCH + j + 1, attempt: 1 })));
      s.push(`EXECUTE sac(${quote(results)}, '${WORKER}', NULL, 'work', ${BATCH})`);
    }
  }
  s.push(`SELECT 'pgi-check', state, count(*) FROM tasks GROUP BY state`);
  s.push('DROP SCHEMA pgi CASCADE');
  return s.map((x) => `${x};\n\n`).join('');
}

/**
 * --functions K: also the K functions whose instructions grew most per task: their own (self)
 * instructions, or with --inclusive those of everything they called too. PostgreSQL's packaged
 * binaries lack most static symbols, so some functions show as addresses. In single-user mode
 * a statement's rows are printed (debugtup): about a fifth of the claim and settlement, where a
 * client connection would cost its output functions only.
 */
const TOP = Number(args.functions);

/** Instructions per function, from callgrind_annotate's listing of a callgrind output file. */
function selfCosts(file: string): Map<string, number> {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', `--inclusive=${args.inclusive ? 'yes' : 'no'}`, file], { maxBuffer: 64 << 20 }).toString();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const r = /^\s*([\d,]+) \([^)]*\)\s+(\S.*)$/.exec(line);
    if (!r || r[2] === 'PROGRAM TOTALS') continue;
    const name = r[2]!.replace(/ \[[^\]]*\]$/, '');
    m.set(name, (m.get(name) ?? 0) + Number(r[1]!.replace(/,/g, '')));
  }
  return m;
}

/** The K functions whose instructions grew most from `a` to `b`, per task, and their share of the growth. */
function topGrowth(a: Map<string, number>, b: Map<string, number>, k: number): string[][] {
  const sum = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
  const total = args.inclusive ? Math.max(...b.values()) - Math.max(...a.values()) : sum(b) - sum(a);
  return [...b.entries()]
    .map(([f, n]) => [f, n - (a.get(f) ?? 0)] as const)
    .sort((x, y) => y[1] - x[1])
    .slice(0, k)
    .map(([f, d]) => [f, fmt(Math.round(d / N)), `${((100 * d) / total).toFixed(1)}%`]);
}

const bin = pgBin();
const asPostgres = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), 'taskflow-pgi-'));
chmodSync(work, 0o777);
const run = (cmd: string, argv: string[]) => (asPostgres ? execFileSync('su', ['postgres', '-c', [cmd, ...argv].map((a) => `'${a}'`).join(' ')]) : execFileSync(cmd, argv));

/** Runs one script under callgrind on its own copy of the cluster; returns the instructions and the task states. */
function measure(lane: string, file: string): Promise<{ instructions: number; states: Record<string, number>; functions?: Map<string, number> }> {
  const data = join(work, `data-${lane}`);
  rmSync(data, { recursive: true, force: true });
  cpSync(join(work, 'data'), data, { recursive: true });
  chmodSync(data, 0o700); // PostgreSQL refuses a data directory others can read
  if (asPostgres) execFileSync('chown', ['-R', 'postgres', data]);
  const outFile = TOP > 0 ? `${file}.callgrind` : '/dev/null';
  const cmd = `valgrind --tool=callgrind --callgrind-out-file=${outFile} ${bin}/postgres --single -j -D ${data} postgres < ${file}`;
  return new Promise((resolve, reject) => {
    const child = asPostgres ? spawn('su', ['postgres', '-c', cmd]) : spawn('sh', ['-c', cmd]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const m = /Collected : (\d+)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`${file}: exit ${code}\n${out.slice(-2000)}`));
      if (/\bERROR:/.test(out)) return reject(new Error(`${file}: ${/ERROR:.*$/m.exec(out)![0]}`));
      const states: Record<string, number> = {};
      // Single-user mode prints each row as numbered attributes: ?column? = "pgi-check", state, count.
      for (const row of out.split('pgi-check').slice(1)) {
        const state = /state = "([a-z]+)"/.exec(row)?.[1];
        const count = /count = "(\d+)"/.exec(row)?.[1];
        if (state && count) states[state] = Number(count);
      }
      resolve({ instructions: Number(m[1]), states, functions: TOP > 0 ? selfCosts(outFile) : undefined });
    });
  });
}

try {
  mkdirSync(join(work, 'data'));
  if (asPostgres) execFileSync('chown', ['postgres', join(work, 'data')]);
  run(`${bin}/initdb`, ['-D', join(work, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const rows: string[][] = [];
  const out: Record<string, unknown> = {};
  for (const v of variants) {
    const files = (['zero', 'insert', 'cycle'] as const).map((k) => {
      const f = join(work, `${v}.${k}.sql`);
      writeFileSync(f, script(v, k));
      return f;
    });
    const [zero, insert] = await Promise.all([measure('a', files[0]!), measure('b', files[1]!)]);
    if (insert.states.queued !== N) throw new Error(`${v}: the inserts left ${JSON.stringify(insert.states)}, not ${N} queued`);
    let cycle: Awaited<ReturnType<typeof measure>> | undefined;
    if (VARIANTS[v]!.cycle) {
      cycle = await measure('a', files[2]!);
      if (cycle.states.succeeded !== N) throw new Error(`${v}: the cycle left ${JSON.stringify(cycle.states)}, not ${N} succeeded`);
    }
    const insertPerTask = Math.round((insert.instructions - zero.instructions) / N);
    const cyclePerTask = cycle ? Math.round((cycle.instructions - insert.instructions) / N) : null;
    out[v] = { zero: zero.instructions, insert: insert.instructions, cycle: cycle?.instructions ?? null, insertPerTask, cyclePerTask };
    if (TOP > 0) {
      console.log(`\n### ${v}: insert, the functions with the most instructions per task${args.inclusive ? ' (inclusive)' : ''}\n`);
      console.log(table(['function', 'instructions per task', 'share'], topGrowth(zero.functions!, insert.functions!, TOP)));
      if (cycle) {
        console.log(`\n### ${v}: claim and settle, the functions with the most instructions per task${args.inclusive ? ' (inclusive)' : ''}\n`);
        console.log(table(['function', 'instructions per task', 'share'], topGrowth(insert.functions!, cycle.functions!, TOP)));
      }
    }
    rows.push([v, fmt(insertPerTask), cyclePerTask === null ? '—' : fmt(cyclePerTask), cyclePerTask === null ? '—' : fmt(insertPerTask + cyclePerTask)]);
    console.error(`  ${v}: insert ${fmt(insertPerTask)}, claim and settle ${cyclePerTask === null ? '—' : fmt(cyclePerTask)} instructions per task`);
  }
  console.log(`\n### PostgreSQL's instructions per task (callgrind, postgres --single; N = ${fmt(N)}, inserts of 1,000, claims of ${BATCH})\n`);
  console.log(table(['variant', 'insert', 'claim + settle', 'the three'], rows));
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}pg-instructions-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), n: N, batch: BATCH, postgres: bin, variants: out }, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
