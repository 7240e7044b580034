import type { Engine, QueueWeight } from '@taskflow/core';

/**
 * Which queues each worker registered, remembered on this node (a registration never
 * changes). The claim statement re-checks state and queue in the database, so a stale entry
 * can cost nothing but a wasted claim.
 *
 * Also when this node last saw each worker active: a claim that returned tasks (the claim
 * statement takes tasks only for an active worker), or a read of its state. A claim that finds
 * nothing reads the worker's state to answer a worker that is not active with a 409 at once;
 * right after such evidence it skips that read, which at low rates saves one statement of about
 * four per task: after each task a worker's claim loop asks again and finds nothing
 * (`cd bench && npm run diagnose -- --only waiters` counts the transactions per task).
 * A worker deregistered on this node is forgotten at once; one made inactive through another
 * node in that moment gets its 409 one long poll later (it can claim nothing meanwhile).
 */
export class WorkerDirectory {
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
