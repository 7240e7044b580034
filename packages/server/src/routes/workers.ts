import type { FastifyReply } from 'fastify';
import {
  isUuid, StaleAttemptError,
  type Engine, type QueueWeight, type SettleOutcome, type TaskResultReport, type WakeHub,
} from '@taskflow/core';
import type { SucceededOutcomes, TaskResult } from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest, HttpProblem } from '../http/problems.ts';
import { claimedTaskJson, workerJson } from '../http/serialize.ts';
import { assertStorable, assertStorableText, storableJson } from '../http/storable.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';

export interface WorkerRouteDeps {
  engine: Engine;
  hub: WakeHub;
  /** Aborted at shutdown: waiting claims return empty at once. */
  shutdown: AbortSignal;
  pollIntervalMs: number;
  workerTtlMs: number;
  maxPayloadBytes: number;
}

/**
 * Which queues each worker registered, remembered on this node (a registration never
 * changes). The claim statement re-checks state and queue in the database, so a stale entry
 * can cost nothing but a wasted claim.
 *
 * Also when this node last saw each worker active: a claim that returned tasks (the claim
 * statement takes tasks only for an active worker), or a read of its state. A claim that finds
 * nothing reads the worker's state to answer a worker that is not active with a 409 at once;
 * right after such evidence it skips that read. At low rates that read was one statement of
 * about four per task: after each task a worker's claim loop asks again and finds nothing.
 * A worker deregistered on this node is forgotten at once; one made inactive through another
 * node in that moment gets its 409 one long poll later (it can claim nothing meanwhile).
 */
class WorkerDirectory {
  private readonly known = new Map<string, QueueWeight[]>();
  private readonly activeAt = new Map<string, number>();
  private readonly engine: Engine;
  private readonly activeForMs: number;
  constructor(engine: Engine, activeForMs: number) {
    this.engine = engine;
    this.activeForMs = activeForMs;
  }
  remember(id: string, queues: QueueWeight[]): void {
    if (this.known.size >= 50_000) this.known.clear();
    this.known.set(id, queues);
  }
  sawActive(id: string): void {
    if (this.activeAt.size >= 50_000) this.activeAt.clear();
    this.activeAt.set(id, performance.now());
  }
  recentlyActive(id: string): boolean {
    const at = this.activeAt.get(id);
    return at !== undefined && performance.now() - at < this.activeForMs;
  }
  forget(id: string): void {
    this.activeAt.delete(id);
  }
  async get(id: string): Promise<QueueWeight[]> {
    const hit = this.known.get(id);
    if (hit) return hit;
    const worker = await this.engine.getWorker(id);
    this.remember(id, worker.queues);
    return worker.queues;
  }
}

function toReport(r: TaskResult, at: string, maxPayloadBytes: number): TaskResultReport {
  r.logs?.forEach((line, i) => {
    assertStorableText(line.level, `${at}/logs/${i}/level`);
    assertStorableText(line.message, `${at}/logs/${i}/message`);
  });
  if (r.status === 'released') {
    for (const field of ['result', 'error', 'retryable', 'retryAfterMs', 'logs'] as const) {
      if (r[field] !== undefined) throw badRequest(`${at}/${field}`, 'is not allowed when status is released');
    }
    return { id: r.id, attempt: r.attempt, status: 'released' };
  }
  if (r.status === 'failed') {
    if (!r.error) throw badRequest(`${at}/error`, 'is required when status is failed');
    if (r.result !== undefined) throw badRequest(`${at}/result`, 'is only allowed when status is succeeded');
    assertStorableText(r.error.message, `${at}/error/message`);
    assertStorableText(r.error.stack, `${at}/error/stack`);
    return { id: r.id, attempt: r.attempt, status: 'failed', error: r.error, retryable: r.retryable, retryAfterMs: r.retryAfterMs, logs: r.logs };
  }
  for (const field of ['error', 'retryable', 'retryAfterMs'] as const) {
    if (r[field] !== undefined) throw badRequest(`${at}/${field}`, 'is only allowed when status is failed');
  }
  const resultJson = r.result === undefined ? undefined : storableJson(r.result, `${at}/result`, maxPayloadBytes);
  return { id: r.id, attempt: r.attempt, status: 'succeeded', resultJson, logs: r.logs };
}

/**
 * The compact successes of a request (`succeeded`: "41:1,42:1", its form checked by the
 * schema) as reports, after those of `results`. Splitting one string makes no object per
 * result to parse and no interned id per result, which the JSON form costs.
 */
function compactReports(list: string | undefined): TaskResultReport[] {
  if (!list) return [];
  const items = list.split(',');
  if (items.length > 1000) throw badRequest('/body/succeeded', 'holds more than 1000 results');
  return items.map((item) => {
    const colon = item.indexOf(':');
    const attempt = Number(item.slice(colon + 1));
    if (attempt > 2147483647) throw badRequest('/body/succeeded', `has an attempt over 2147483647 (${item})`);
    return { id: item.slice(0, colon), attempt, status: 'succeeded' };
  });
}

/** The outcomes of the compact successes: a count, and the exceptions by id. */
function compactOutcomes(reports: readonly TaskResultReport[], outcomes: readonly SettleOutcome[]): SucceededOutcomes {
  const out: SucceededOutcomes = { accepted: 0, duplicate: [], stale: [] };
  reports.forEach((r, i) => {
    const o = outcomes[i];
    if (o === 'accepted') out.accepted++;
    else out[o === 'duplicate' ? 'duplicate' : 'stale'].push(r.id);
  });
  return out;
}

/** Fires when the client goes away before the response is sent, or the service stops. */
function stopWaiting(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  const ctl = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ctl.abort();
  });
  return AbortSignal.any([ctl.signal, shutdown]);
}

export function workerHandlers(deps: WorkerRouteDeps): Pick<
  Handlers,
  'registerWorker' | 'listWorkers' | 'getWorker' | 'heartbeat' | 'claim' | 'reportResults' | 'reportResult' | 'deregisterWorker'
> {
  const { engine, hub, shutdown, pollIntervalMs, workerTtlMs, maxPayloadBytes } = deps;
  const directory = new WorkerDirectory(engine, pollIntervalMs);

  /** Validates the results of a request (400 naming the item) before any of them is settled. */
  function reportsOf(results: TaskResult[], at: (i: number) => string): TaskResultReport[] {
    return results.map((r, i) => toReport(r, at(i), maxPayloadBytes));
  }

  /**
   * The outcomes of a request's results, settled as `[...full, ...compact]`: one per item of
   * `results` (`full`), then those of `succeeded` (`compact`) as a count and the exceptions.
   */
  function outcomesOf(full: readonly TaskResultReport[], compact: readonly TaskResultReport[], outcomes: readonly SettleOutcome[]) {
    return {
      results: full.map((r, i) => ({ id: r.id, status: outcomes[i]! })),
      succeeded: compactOutcomes(compact, outcomes.slice(full.length)),
    };
  }

  async function settle(workerId: string, results: TaskResult[], at: (i: number) => string, compact: TaskResultReport[] = []) {
    const reports = reportsOf(results, at);
    const outcomes = await engine.settle(workerId, [...reports, ...compact]);
    // Nothing accepted: an unknown worker is a 404, not a batch of stale results.
    if (!outcomes.includes('accepted')) await engine.workerState(workerId);
    return outcomesOf(reports, compact, outcomes);
  }

  /** The queues of this claim: the registered ones, or the requested subset of them. */
  async function claimQueues(workerId: string, requested: string[] | undefined): Promise<QueueWeight[]> {
    const registered = await directory.get(workerId);
    if (!requested) return registered;
    return requested.map((name, i) => {
      const q = registered.find((r) => r.name === name);
      if (!q) throw badRequest(`/body/queues/${i}`, `is not one of the queues this worker registered (${registered.map((r) => r.name).join(', ')})`);
      return q;
    });
  }

  return {
    async registerWorker(req, reply) {
      assertStorable(req.body, '/body');
      const queues = req.body.queues.map((q) => (typeof q === 'string' ? { name: q, weight: 1 } : { name: q.name, weight: q.weight ?? 1 }));
      const names = queues.map((q) => q.name);
      const dup = names.findIndex((n, i) => names.indexOf(n) !== i);
      if (dup >= 0) throw badRequest(`/body/queues/${dup}`, `names queue "${names[dup]}" twice`);
      const worker = await engine.registerWorker({
        name: req.body.name, queues, concurrency: req.body.concurrency ?? 1, metadata: req.body.metadata,
      });
      directory.remember(worker.id, worker.queues);
      reply.code(201).header('location', `/api/v1/workers/${worker.id}`);
      return { ...workerJson(worker), heartbeatIntervalMs: Math.max(50, Math.floor(workerTtlMs / 3)), workerTtlMs };
    },

    async listWorkers(req) {
      const q = req.query;
      const cursor = decodeCursor(q.cursor, ['at', 'id'] as const);
      if (cursor && (!isUuid(cursor.id) || Number.isNaN(Date.parse(cursor.at)))) throw badRequest('/query/cursor', 'is not a cursor this server issued');
      const limit = q.limit ?? 50;
      const workers = await engine.listWorkers({
        states: q.state, limit, after: cursor ? { registeredAt: new Date(cursor.at), id: cursor.id } : undefined,
      });
      const last = workers.at(-1);
      return {
        items: workers.map(workerJson),
        nextCursor: workers.length === limit && last ? encodeCursor({ at: last.registeredAt.toISOString(), id: last.id }) : null,
      };
    },

    async getWorker(req) {
      return workerJson(await engine.getWorker(req.params.id));
    },

    async heartbeat(req) {
      return engine.heartbeat(req.params.id, req.body?.running);
    },

    async claim(req, reply) {
      const workerId = req.params.id;
      const body = req.body ?? {};
      const queues = await claimQueues(workerId, body.queues); // 404 before anything is settled
      const full = body.results?.length ? reportsOf(body.results, (i) => `/body/results/${i}`) : [];
      const compact = compactReports(body.succeeded);
      const reports = compact.length ? [...full, ...compact] : full;
      const names = queues.map((q) => q.name);
      const max = body.max ?? 1;
      const deadline = Date.now() + (body.waitMs ?? 0);
      const gone = stopWaiting(reply, shutdown);
      // Subscribe before looking, so a task enqueued between a look and the wait wakes us.
      let sub = hub.subscribe(names);
      // A wake-up goes to one waiter (see WakeHub): hand it on if this claim may have left
      // tasks behind (a full batch) or does not claim after it (below, and in `finally`).
      let handOn = false;
      try {
        // The results and the first claim share a statement (one round trip, one commit).
        const first = await engine.settleAndClaim(workerId, reports, queues, max);
        let tasks = first.tasks;
        if (tasks.length === 0 && !directory.recentlyActive(workerId)) {
          const state = await engine.workerState(workerId);
          if (state !== 'active') {
            throw new HttpProblem(409, 'worker_not_active', 'Worker not active', `worker ${workerId} is ${state}; ${state === 'lost' ? 'heartbeat to resume' : 'register again'}`);
          }
          directory.sawActive(workerId);
        }
        while (tasks.length === 0) {
          const left = deadline - Date.now();
          if (left <= 0 || gone.aborted) break;
          await sub.wait(Math.min(left, pollIntervalMs), gone);
          if (gone.aborted) break; // do not claim for a worker that has gone
          const woken = sub.woken;
          sub.close();
          sub = hub.subscribe(names);
          tasks = await engine.claim(workerId, queues, max);
          if (woken && tasks.length >= max) handOn = true;
        }
        if (tasks.length > 0) directory.sawActive(workerId);
        if (gone.aborted && !shutdown.aborted && tasks.length > 0) {
          // The worker hung up while we claimed: hand the tasks back now, not after their lease.
          await engine.releaseClaimed(workerId, tasks);
          tasks = [];
        }
        const settled = reports.length ? outcomesOf(full, compact, first.outcomes) : undefined;
        const results = full.length ? `,"results":${JSON.stringify(settled!.results)}` : '';
        const succeeded = compact.length ? `,"succeeded":${JSON.stringify(settled!.succeeded)}` : '';
        return reply.type('application/json; charset=utf-8').send(`{"tasks":[${tasks.map(claimedTaskJson).join(',')}]${results}${succeeded}}`);
      } finally {
        // Handed a wake-up that no claim of this request followed: another waiter takes it.
        if (sub.woken) handOn = true;
        sub.close();
        if (handOn) hub.wakeLocal(names);
      }
    },

    async reportResults(req) {
      const results = req.body.results ?? [];
      const compact = compactReports(req.body.succeeded);
      if (results.length === 0 && compact.length === 0) throw badRequest('/body/results', 'must hold at least one result (or give them in succeeded)');
      const out = await settle(req.params.id, results, (i) => `/body/results/${i}`, compact);
      return compact.length ? out : { results: out.results };
    },

    async reportResult(req) {
      const [outcome] = (await settle(req.params.id, [{ ...req.body, id: req.params.taskId }], () => '/body')).results;
      if (outcome!.status === 'stale') {
        await engine.getTask(req.params.taskId); // 404 rather than 409 when the task does not exist
        throw new StaleAttemptError(req.params.taskId, req.body.attempt);
      }
      return outcome;
    },

    async deregisterWorker(req) {
      directory.forget(req.params.id);
      return engine.deregisterWorker(req.params.id);
    },
  };
}
