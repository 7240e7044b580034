import { InvalidStateError, isTaskId, type Engine } from '@taskflow/core';
import type { Handlers } from '../http/route.ts';
import { badRequest } from '../http/problems.ts';
import { taskJson } from '../http/serialize.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';

export function dlqHandlers(engine: Engine): Pick<Handlers, 'listDead' | 'requeueDead' | 'requeueDeadOne' | 'purgeDead'> {
  return {
    async listDead(req) {
      const q = req.query;
      const cursor = decodeCursor(q.cursor, ['id'] as const);
      if (cursor && !isTaskId(cursor.id)) throw badRequest('/query/cursor', 'is not a cursor this server issued');
      const limit = q.limit ?? 50;
      const tasks = await engine.listTasks({ states: ['dead'], queue: q.queue, type: q.type, beforeId: cursor?.id, limit });
      return { items: tasks.map(taskJson), nextCursor: tasks.length === limit ? encodeCursor({ id: tasks.at(-1)!.id }) : null };
    },
    async requeueDead(req) {
      const { ids, queue, type, all } = req.body;
      if (ids) {
        if (queue !== undefined || type !== undefined || all !== undefined) {
          throw badRequest('/body/ids', 'cannot be combined with queue, type or all');
        }
        const outcomes = await engine.requeueDead(ids);
        return {
          requeued: outcomes.filter((o) => o === 'requeued').length,
          items: ids.map((id, i) => ({ id, status: outcomes[i]! })),
        };
      }
      if (queue === undefined && all !== true) {
        throw badRequest('/body', 'must name ids, a queue, or set all: true to requeue the whole dead-letter queue');
      }
      return { requeued: await engine.requeueDeadWhere({ queue, type }) };
    },
    async requeueDeadOne(req) {
      const [outcome] = await engine.requeueDead([req.params.id]);
      if (outcome === 'invalid_state') {
        const task = await engine.getTask(req.params.id);
        throw new InvalidStateError(`task ${task.id} is ${task.state}, not dead`, task.state);
      }
      return taskJson(await engine.getTask(req.params.id)); // NotFoundError when it does not exist
    },
    async purgeDead(req) {
      return { purged: await engine.purgeDead({ queue: req.query.queue }) };
    },
  };
}
