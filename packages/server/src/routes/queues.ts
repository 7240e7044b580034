import type { Engine } from '@taskflow/core';
import type { Handlers } from '../http/route.ts';
import { queueJson } from '../http/serialize.ts';

export function queueHandlers(engine: Engine): Pick<Handlers, 'listQueues' | 'getQueue' | 'pauseQueue' | 'resumeQueue' | 'updateQueueSettings'> {
  return {
    async listQueues() {
      return { items: (await engine.listQueues()).map(queueJson) };
    },
    async getQueue(req) {
      return queueJson(await engine.getQueue(req.params.name));
    },
    async pauseQueue(req) {
      return queueJson(await engine.setQueuePaused(req.params.name, true));
    },
    async resumeQueue(req) {
      return queueJson(await engine.setQueuePaused(req.params.name, false));
    },
    async updateQueueSettings(req) {
      return queueJson(await engine.updateQueueSettings(req.params.name, req.body));
    },
  };
}
