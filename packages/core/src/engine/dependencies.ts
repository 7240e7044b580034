/**
 * Tasks that depend on existing tasks by id (`dependsOn` in a plain submit): inserted blocked
 * with their edges in one transaction, then re-counted against their parents once committed
 * (taskRecountParents says why a count inside the transaction could miss a parent's success).
 * A node that dies between the two leaves the task blocked until the maintenance re-count.
 */
import { InvalidGraphError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { enqueue, type EnqueueResult } from './enqueue.ts';
import { isTaskId } from './ids.ts';
import { toTask } from './rows.ts';
import type { TaskInput } from './types.ts';

/** See Engine.enqueue, for inputs of which one has `dependsOn`. */
export async function enqueueWithParents(ctx: EngineContext, inputs: readonly TaskInput[]): Promise<EnqueueResult[]> {
  const field = (i: number, k: number) => (inputs.length === 1 ? `dependsOn/${k}` : `tasks/${i}/dependsOn/${k}`);
  const wanted = new Set<string>();
  const problems: { field: string; message: string }[] = [];
  inputs.forEach((input, i) => input.dependsOn?.forEach((id, k) => {
    if (isTaskId(id)) wanted.add(id);
    else problems.push({ field: field(i, k), message: `is not a task id: "${id}"` });
  }));
  const made = await ctx.db.transaction(async (tx) => {
    const { rows } = wanted.size ? await tx.query(T.taskExisting, [[...wanted]]) : { rows: [] };
    const existing = new Set(rows.map((r) => String(r.id)));
    inputs.forEach((input, i) => input.dependsOn?.forEach((id, k) => {
      if (isTaskId(id) && !existing.has(id)) problems.push({ field: field(i, k), message: `names task ${id}, which does not exist` });
    }));
    if (problems.length > 0) throw new InvalidGraphError(problems);
    const results = await enqueue(ctx, inputs.map(({ dependsOn: _d, ...t }) => t), tx);
    const children: string[] = [];
    const counts: number[] = [];
    const parents: string[] = [];
    const edgeChildren: string[] = [];
    results.forEach((r, i) => {
      const ps = [...new Set(inputs[i]!.dependsOn ?? [])];
      if (!r.created || ps.length === 0) return;
      children.push(r.ref.id);
      counts.push(ps.length);
      for (const p of ps) { parents.push(p); edgeChildren.push(r.ref.id); }
    });
    await tx.query(T.taskBlockMany, [children, children.map(() => null), counts, null, true]);
    await tx.query(T.taskDependenciesAdd, [parents, edgeChildren, false]);
    return { results, children };
  });
  await recountParents(ctx, made.children);
  const { rows } = await ctx.db.query(T.taskGetMany, [made.children]);
  const fresh = new Map(rows.map((r) => [String(r.id), toTask(r)]));
  return made.results.map((r) => {
    const task = fresh.get(r.ref.id);
    return task ? { ...r, task, ref: { ...r.ref, state: task.state } } : r;
  });
}

/** Re-counts the parents of blocked tasks that depend on tasks by id, and wakes claimers for those made ready. */
export async function recountParents(ctx: EngineContext, children: readonly string[]): Promise<number> {
  if (children.length === 0) return 0;
  const { rows } = await ctx.db.query(T.taskRecountParents, [children, ctx.now()]);
  ctx.announce(rows);
  return rows.filter((r) => r.state !== 'blocked').length;
}

/** How old a blocked task must be before the maintenance re-count looks at it. */
const RECOUNT_GRACE_MS = 10_000;

/**
 * See Engine.recountBlocked: the maintenance pass over every blocked task outside a workflow,
 * `batch` at a time; returns how many it released (made ready or cancelled).
 */
export async function recountBlocked(ctx: EngineContext, batch: number): Promise<number> {
  let after = '0';
  let released = 0;
  for (;;) {
    const now = ctx.now() ?? new Date();
    const { rows } = await ctx.db.query(T.taskBlockedLoose, [after, batch, new Date(now.getTime() - RECOUNT_GRACE_MS)]);
    if (rows.length === 0) return released;
    const ids = rows.map((r) => String(r.id));
    released += await recountParents(ctx, ids);
    after = ids.at(-1)!;
    if (rows.length < batch) return released;
  }
}
