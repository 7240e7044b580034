/**
 * `--only http`: the floor of one HTTP exchange on this machine: a bare node:http server
 * (lib/http-echo.ts) in its own process, driven by an undici client as the SDK's, one at a time
 * and 50 in flight; the client's and the server's CPU per request.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { cpuSeconds } from '../lib/proc.ts';
import { fmt, table } from '../lib/stats.ts';
import type { DiagnoseContext } from './context.ts';
import { selfCpu, us } from './measure.ts';

const ECHO_BODY = JSON.stringify({ type: 'noop', queue: 'single', payload: { p: 's', i: 1 } });
const ECHO_HEADERS = { 'content-type': 'application/json', authorization: 'Bearer x', accept: 'application/json' };

/**
 * The bare node:http server of lib/http-echo.ts in a process of its own, and one exchange with
 * it as the SDK makes one (a task-sized JSON POST, the answer parsed).
 */
export async function startHttpEcho(): Promise<{ child: ChildProcess; exchange(agent: Agent): Promise<void> }> {
  const child = fork(fileURLToPath(new URL('../lib/http-echo.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port: number = await new Promise((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    child,
    async exchange(agent) {
      const res = await request(`http://127.0.0.1:${port}/api/v1/tasks`, {
        method: 'POST', body: ECHO_BODY, headers: ECHO_HEADERS, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000,
      });
      JSON.parse(await res.body.text());
    },
  };
}

export async function httpSection(ctx: DiagnoseContext): Promise<unknown> {
  const N = ctx.n;
  const { child, exchange } = await startHttpEcho();
  const rows: Record<string, number>[] = [];
  try {
    const agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    const one = () => exchange(agent);
    for (let i = 0; i < 2000; i++) await one(); // warm-up
    for (const inFlight of [1, 50]) {
      let next = 0;
      const s0 = cpuSeconds(child.pid!)!;
      const h0 = selfCpu();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next++ < N) await one();
      }));
      const ms = performance.now() - t0;
      rows.push({ inFlight, perSec: Math.round((N * 1000) / ms), clientUs: us(selfCpu() - h0, N), serverUs: us(cpuSeconds(child.pid!)! - s0, N), wallUs: Math.round((ms * 1000) / N) });
    }
    await agent.close();
  } finally {
    child.kill('SIGKILL');
  }
  console.log('\n### The floor of an HTTP exchange (bare node:http server in its own process, undici client)\n');
  console.log(table(['in flight', 'requests/s', 'wall per request', 'client CPU per request', 'server CPU per request'],
    rows.map((r) => [String(r.inFlight), fmt(r.perSec), `${r.wallUs} µs`, `${r.clientUs} µs`, `${r.serverUs} µs`])));
  return rows;
}
