import { TaskflowSystem } from './systems/taskflow.ts';
import { bulkEnqueue, drain, spawnWorker } from './lib/workloads.ts';
import { rssMiB, sleep } from './lib/proc.ts';
let last = '', lastMark = '';
const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: 'postgres://postgres@127.0.0.1:5432/test', schema: `probe_${Date.now().toString(36)}`, serverExecArgv: ['--trace-gc'],
  onServerLine: (l) => { if (l.includes('Scavenge') || l.includes('Mark')) { last = l; if (l.includes('Mark')) lastMark = l; } } });
await sys.setup();
const pid = sys.serverPid()!;
const H = 100000;
try {
  console.log('start rss', rssMiB(pid));
  for (let k = 0; k < 5; k++) {
    await bulkEnqueue(sys, 'hot', H, 1000, `h${k}`);
    console.log(k, 'after bulk rss', rssMiB(pid), '|', last.replace(/^.*?ms: /, '').slice(0, 70));
    const worker = await spawnWorker(sys, 'hot', 50);
    await drain(sys, worker, 'hot', H, `h${k}`, k * H);
    await worker.stop();
    await sleep(500);
    console.log(k, 'after drain rss', rssMiB(pid), '|', last.replace(/^.*?ms: /, '').slice(0, 70), '| mark:', lastMark.replace(/^.*?ms: /, '').slice(0, 60));
  }
} finally { await sys.teardown(); }
