/**
 * Enqueue of a batch in which some task has a unique key (taskInsertManyUnique): one statement
 * takes the keys and inserts the tasks that got theirs; the others are answered with the
 * task holding their key.
 */
import type { Executor } from '../db/types.ts';
import { mapStorageError, TaskflowError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { existing, Inserted, lockOrder, readBackReplays, retryLostRaces, type EnqueueResult } from './enqueue.ts';
import { flowColumns, insertColumns, lifetimeColumns, traceColumns, type ResolvedInput } from './insertColumns.ts';
import { toTask, type Row } from './rows.ts';

/** See Engine.enqueue. `items` have the engine's defaults applied. */
export async function enqueueUnique(ctx: EngineContext, items: readonly ResolvedInput[], executor: Executor): Promise<EnqueueResult[]> {
  // Idempotency keys in lock order (enqueue.ts, lockOrder); the statement orders the unique keys.
  const order = lockOrder(items);
  const sent = order.map((k) => items[k]!);
  const params = [...insertColumns(sent, ctx.options), ctx.now(), ...ctx.insertDefaults, ...traceColumns(sent), ...lifetimeColumns(sent), ...flowColumns(sent)];
  const run = async (ex: Executor): Promise<Row[]> => {
    const { rows } = await ex.query(T.taskInsertManyUnique, params);
    // A key taken by a task whose idempotency key already existed: no such task was made.
    const orphans = rows.flatMap((r, k) => (!r.inserted && r.holder === r.id ? [{ item: sent[k]!, id: r.id as string }] : []));
    if (orphans.length > 0) {
      await ex.query(T.taskUniqueKeyRelease, [orphans.map((o) => o.item.queue), orphans.map((o) => o.item.uniqueKey), orphans.map((o) => o.id)]);
    }
    return rows;
  };
  // Both keys on one task is the only way to an orphan: release it in the insert's transaction.
  const both = sent.some((i) => i.uniqueKey !== undefined && i.idempotencyKey !== undefined);
  let rows: Row[];
  try {
    // A statement of its own (or the transaction of both) that lost a race runs again, as in enqueue.ts.
    if (executor !== ctx.db) rows = await run(executor);
    else rows = await retryLostRaces(() => (both ? ctx.db.transaction(run) : run(executor)));
    if (executor === ctx.db) for (const i of items) ctx.rememberQueue(i.queue);
  } catch (err) {
    throw mapStorageError(err, 'tasks');
  }
  const out = await resolve(items, order, rows, executor);
  ctx.announce(rows.flatMap((r, k) => (r.inserted ? [{ ...r, queue: sent[k]!.queue }] : [])));
  return out;
}

/**
 * One result per input, in input order, from the statement's rows (in `order`): created, a
 * duplicate of its key's holder (read back, or a task of this same batch), or an idempotency
 * replay (read back by key).
 */
async function resolve(items: readonly ResolvedInput[], order: number[], rows: Row[], executor: Executor): Promise<EnqueueResult[]> {
  const out: EnqueueResult[] = new Array(items.length);
  const inputOf = new Map<string, number>(); // drawn id -> input index
  const replays: number[] = [];
  const dups: { idx: number; holder: string }[] = [];
  rows.forEach((r, k) => {
    const idx = order[k]!;
    inputOf.set(r.id, idx);
    if (r.inserted) out[idx] = new Inserted(items[idx]!, r);
    else if (r.holder !== null && r.holder !== r.id) dups.push({ idx, holder: r.holder });
    else replays.push(idx);
  });
  await readBackReplays(items, replays, executor, out);
  const outside = [...new Set(dups.filter((d) => !inputOf.has(d.holder)).map((d) => d.holder))];
  const holders = new Map<string, EnqueueResult>();
  if (outside.length > 0) {
    const { rows: found } = await executor.query(T.taskGetMany, [outside]);
    for (const r of found) holders.set(String(r.id), existing(toTask(r), 'unique'));
  }
  for (const { idx, holder } of dups) {
    const within = inputOf.get(holder);
    const first = within !== undefined ? out[within] : holders.get(holder);
    // Only if the dead-letter purge deleted the holder between our insert and this read.
    if (!first) throw new TaskflowError('unique_race', `the task holding unique key ${items[idx]!.uniqueKey} vanished during the enqueue; submit again`);
    // The holder made by this same submission earlier (a retried request): its idempotency key says so.
    const own = items[idx]!.idempotencyKey !== undefined && first.task.idempotencyKey === items[idx]!.idempotencyKey;
    out[idx] = { created: false, deduplicated: own ? 'idempotency' : 'unique', task: first.task, ref: first.ref };
  }
  return out;
}
