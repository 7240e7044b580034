/**
 * A claim whose client hangs up before the answer is written hands its tasks back at once
 * (queued, the attempt refunded, no lease loss counted), on both drivers: a claim sent over a
 * raw socket that is closed right after sending, so the hang-up races the claim in the database.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverName } from '@taskflow/core';
import { startTestService, type TestService } from './support/index.ts';

/**
 * Sends one claim over a fresh socket and closes it as soon as the request is written; resolves
 * with the ids of the tasks in the answer, if one came back (the socket is half-closed: the
 * service may still answer).
 */
function claimAndHangUp(url: string, key: string, workerId: string): Promise<string[]> {
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({ max: 1, waitMs: 0 });
  const request = [
    `POST /api/v1/workers/${workerId}/claim HTTP/1.1`, `Host: ${hostname}:${port}`, `Authorization: Bearer ${key}`,
    'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.end(request);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      if (!text.startsWith('HTTP/1.1 200') || body === '') return resolve([]);
      resolve((JSON.parse(body) as { tasks: { id: string }[] }).tasks.map((t) => t.id));
    });
  });
}

for (const driver of ['pglite', 'postgres'] as DriverName[]) {
  describe(`hung-up claims (${driver})`, () => {
    let tf: TestService;
    beforeAll(async () => {
      // Leases far longer than the test: a task not handed back stays leased.
      tf = await startTestService(driver, { defaultTimeoutMs: 600_000 });
    }, 180_000); // PGlite's start takes a minute on a busy machine
    afterAll(async () => {
      await tf?.stop();
    });

    it('hands back the tasks of 40 of 40 claims closed right after sending', async () => {
      const queue = `hangup.${driver}`;
      const worker = await tf.admin.registerWorker({ name: 'gone', queues: [queue] });
      const ids = (await tf.admin.enqueueMany(Array.from({ length: 40 }, () => ({ type: 't', queue })))).items.map((i) => i.task.id);
      const running = async () => (await tf.admin.listTasks({ queue, state: ['running'] })).items.map((t) => t.id);
      const stillLeased: string[][] = [];
      // Tasks whose answer reached the client: written before the service could see the
      // hang-up (a client preempted between sending its request and its FIN), so delivered as
      // far as the service can tell; they stay leased, as routes/workers.ts says.
      const delivered = new Set<string>();
      for (let i = 0; i < 40; i++) {
        for (const id of await claimAndHangUp(tf.url, tf.adminKey, worker.id)) delivered.add(id);
        // Each claim either takes a task and hands it back, or sees the hang-up before claiming.
        const deadline = Date.now() + 3000;
        const undelivered = async () => (await running()).filter((id) => !delivered.has(id));
        let leased = await undelivered();
        while (leased.length > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
          leased = await undelivered();
        }
        if (leased.length > 0) stillLeased.push(leased);
      }
      expect(stillLeased).toEqual([]);
      // A task answered to the client is leased; every other one is back in line.
      expect((await running()).sort()).toEqual([...delivered].sort());
      const tasks = await Promise.all(ids.filter((id) => !delivered.has(id)).map((id) => tf.admin.getTask(id)));
      // Queued, claimable at once, without a lease loss; every attempt made was handed back unrun.
      expect(tasks.filter((t) => t.state !== 'queued' || t.leaseLosses !== 0)).toEqual([]);
      const handedBack = tasks.flatMap((t) => t.attempts).map((a) => a.outcome);
      expect(handedBack.filter((o) => o !== 'abandoned')).toEqual([]);
      // Most hang-ups race a claim that went through: the hand-back, not a claim skipped, is tested.
      expect(handedBack.length).toBeGreaterThan(0);
      const claimed = await tf.admin.claim(worker.id, { max: 40 });
      expect(claimed.tasks).toHaveLength(40 - delivered.size);
      expect((await tf.admin.getWorker(worker.id)).state).toBe('active');
    }, 120_000);
  });
}
