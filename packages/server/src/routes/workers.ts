/**
 * The worker routes: registration, heartbeats, claims and results. What a claim does while it
 * waits is claims/longPoll.ts; results are parsed by http/reports.ts.
 */
import type { FastifyReply } from 'fastify';
import {
  InvalidStateError, isUuid, ResultTooLargeError, StaleAttemptError, type ClaimedTask, type Engine, type QueueWeight, type SettleOutcome, type TaskResultReport,
  type WakeHub,
} from '@taskflow/core';
import type { TaskResult } from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest, HttpProblem } from '../http/problems.ts';
import { claimedTaskJson, workerJson } from '../http/serialize.ts';
import { assertStorable } from '../http/storable.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { compactReports, outcomesOf, reportsOf } from '../http/reports.ts';
import { LongPoll, WorkerNotActiveError } from '../claims/longPoll.ts';
import { WorkerDirectory } from '../claims/workerDirectory.ts';
import { traceFields, type ServerSpans, type TracedRequest } from '../tracing/spans.ts';

export interface WorkerRouteDeps {
  engine: Engine;
  hub: WakeHub;
  /** Aborted at shutdown: waiting claims return empty at once. */
  shutdown: AbortSignal;
  pollIntervalMs: number;
  workerTtlMs: number;
  maxPayloadBytes: number;
  /** Records `receive` and `settle` spans; undefined without tracing. */
  spans?: ServerSpans;
}

type RegistryRoutes = 'registerWorker' | 'listWorkers' | 'getWorker' | 'heartbeat' | 'deregisterWorker';
type ResultRoutes = 'claim' | 'reportResults' | 'reportResult';

export function workerHandlers(deps: WorkerRouteDeps): Pick<Handlers, RegistryRoutes | ResultRoutes> {
  const directory = new WorkerDirectory(deps.engine, deps.pollIntervalMs);
  return { ...registryHandlers(deps, directory), ...resultHandlers(deps, directory) };
}

/**
 * Fires when the client goes away before the response is sent: the connection closes, or the
 * client ends its side of it (Node's server then ends the connection without writing the
 * answer: it does not allow half-open connections). The end is seen as soon as it is read,
 * often before the connection's 'close', which comes a turn of the event loop later.
 */
function hangUpSignal(reply: FastifyReply): AbortSignal {
  const ctl = new AbortController();
  const res = reply.raw;
  const gone = () => {
    if (!res.writableFinished) ctl.abort();
  };
  res.once('close', gone);
  const socket = reply.request.raw.socket;
  if (socket.readableEnded || socket.destroyed) ctl.abort();
  else {
    socket.once('end', gone);
    res.once('close', () => socket.off('end', gone));
  }
  return ctl.signal;
}

/** The queues of this claim: the registered ones, or the requested subset of them. */
async function claimQueues(directory: WorkerDirectory, workerId: string, requested: string[] | undefined): Promise<QueueWeight[]> {
  const registered = await directory.get(workerId);
  if (!requested) return registered;
  return requested.map((name, i) => {
    const q = registered.find((r) => r.name === name);
    if (!q) throw badRequest(`/body/queues/${i}`, `is not one of the queues this worker registered (${registered.map((r) => r.name).join(', ')})`);
    return q;
  });
}

/** A claim's answer, written as JSON text: the tasks' payloads are JSON text already (see claimedTaskJson). */
function claimResponse(
  tasks: readonly ClaimedTask[], full: readonly TaskResultReport[], compact: readonly TaskResultReport[], outcomes: readonly SettleOutcome[],
): string {
  const settled = full.length || compact.length ? outcomesOf(full, compact, outcomes) : undefined;
  const results = full.length ? `,"results":${JSON.stringify(settled!.results)}` : '';
  const succeeded = compact.length ? `,"succeeded":${JSON.stringify(settled!.succeeded)}` : '';
  return `{"tasks":[${tasks.map(claimedTaskJson).join(',')}]${results}${succeeded}}`;
}

const accepted = (outcomes: readonly SettleOutcome[]) => outcomes.filter((o) => o === 'accepted').length;

/**
 * A result too large to hand to the task's children, as a 413 naming the result's field in
 * this request (so that a worker, the SDK's among them, reports that task failed instead).
 */
function namingResult(err: unknown, results: readonly { id?: string }[], at: (i: number) => string): unknown {
  if (!(err instanceof ResultTooLargeError)) return err;
  const field = `${at(Math.max(0, results.findIndex((r) => r.id === err.taskId)))}/result`;
  return new HttpProblem(413, 'result_too_large', 'Result too large', `${field} ${err.message}`, [{ field, message: err.message }]);
}

function resultHandlers(deps: WorkerRouteDeps, directory: WorkerDirectory): Pick<Handlers, ResultRoutes> {
  const { engine, maxPayloadBytes, spans } = deps;
  const longPoll = new LongPoll({ engine, hub: deps.hub, directory, shutdown: deps.shutdown, pollIntervalMs: deps.pollIntervalMs });
  const atResult = (i: number) => `/body/results/${i}`;

  /**
   * A claim answer that could not be written (the connection went away as it was sent) hands
   * its tasks back, as a hang-up seen before the answer does (claims/longPoll.ts). One written
   * to the connection and lost after is not seen here: the worker does not list those tasks in
   * its heartbeats, and the rescuer takes them when their lease runs out.
   */
  function handBackIfUndelivered(reply: FastifyReply, workerId: string, tasks: readonly ClaimedTask[]): void {
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished || deps.shutdown.aborted) return;
      engine.releaseClaimed(workerId, tasks).catch((err: unknown) => {
        reply.log.warn({ err, workerId, tasks: tasks.length, ...(spans ? traceFields(reply.request) : {}) }, 'could not hand back the tasks of an undelivered claim; they return when their leases expire');
      });
    });
  }

  async function settle(request: TracedRequest, workerId: string, results: TaskResult[], at: (i: number) => string, compact: TaskResultReport[] = []) {
    const reports = reportsOf(results, at, maxPayloadBytes);
    const started = spans?.start(request, false);
    const all = compact.length ? [...reports, ...compact] : reports;
    const outcomes = await engine.settle(workerId, all).catch((err: unknown) => {
      throw namingResult(err, results, at);
    });
    if (spans) {
      const queues = await directory.get(workerId).catch(() => undefined);
      spans.settle(started!, workerId, queues?.length === 1 ? queues[0]!.name : undefined, all, accepted(outcomes));
    }
    // Nothing accepted: an unknown worker is a 404, not a batch of stale results.
    if (!outcomes.includes('accepted')) await engine.workerState(workerId);
    return outcomesOf(reports, compact, outcomes);
  }

  return {
    async claim(req, reply) {
      const workerId = req.params.id;
      const body = req.body ?? {};
      const queues = await claimQueues(directory, workerId, body.queues); // 404 before anything is settled
      const full = body.results?.length ? reportsOf(body.results, atResult, maxPayloadBytes) : [];
      const compact = compactReports(body.succeeded);
      const reports = compact.length ? [...full, ...compact] : full;
      const started = spans?.start(req);
      const queue = queues.length === 1 ? queues[0]!.name : undefined;
      const onSettled = spans && reports.length
        ? (outcomes: readonly SettleOutcome[]) => spans.settle(started!, workerId, queue, reports, accepted(outcomes))
        : undefined;
      const { tasks, outcomes } = await longPoll.claim(
        { workerId, queues, reports, max: body.max ?? 1, waitMs: body.waitMs ?? 0, onSettled },
        hangUpSignal(reply),
      ).catch((err: unknown) => {
        throw namingResult(err, body.results ?? [], atResult);
      });
      if (tasks.length > 0) handBackIfUndelivered(reply, workerId, tasks);
      spans?.receive(started!, workerId, tasks);
      return reply.type('application/json; charset=utf-8').send(claimResponse(tasks, full, compact, outcomes));
    },

    async reportResults(req) {
      const results = req.body.results ?? [];
      const compact = compactReports(req.body.succeeded);
      if (results.length === 0 && compact.length === 0) throw badRequest('/body/results', 'must hold at least one result (or give them in succeeded)');
      const out = await settle(req, req.params.id, results, atResult, compact);
      return compact.length ? out : { results: out.results };
    },

    async reportResult(req) {
      const [outcome] = (await settle(req, req.params.id, [{ ...req.body, id: req.params.taskId }], () => '/body')).results;
      if (outcome!.status === 'stale') {
        await engine.getTask(req.params.taskId); // 404 rather than 409 when the task does not exist
        throw new StaleAttemptError(req.params.taskId, req.body.attempt);
      }
      return outcome;
    },
  };
}

function registryHandlers(deps: WorkerRouteDeps, directory: WorkerDirectory): Pick<Handlers, RegistryRoutes> {
  const { engine, workerTtlMs } = deps;
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
      try {
        return await engine.heartbeat(req.params.id, req.body?.running);
      } catch (err) {
        // The claim's code for the same state: a worker branches on one code, whichever call met it.
        if (err instanceof InvalidStateError && err.state === 'stopped') throw new WorkerNotActiveError(req.params.id, 'stopped', { cause: err });
        throw err;
      }
    },

    async deregisterWorker(req) {
      directory.forget(req.params.id);
      return engine.deregisterWorker(req.params.id, req.body?.started);
    },
  };
}
