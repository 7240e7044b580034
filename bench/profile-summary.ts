/**
 * Summarises V8 .cpuprofile files (from node --cpu-prof): the functions with the most self
 * time, and self time by origin (a package, Taskflow's own packages, Node internals, GC).
 *
 *   npm run profile-summary -- profiles/<dir>/server.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface Summary {
  totalMs: number;
  /** Excluding (idle): the time the process was on CPU, as sampled. */
  busyMs: number;
  top: { fn: string; where: string; origin: string; selfMs: number; pctBusy: number }[];
  byOrigin: { origin: string; selfMs: number; pctBusy: number }[];
}

/** Where a frame's code comes from: a package name, a Taskflow package, node internals, or a V8 pseudo-frame. */
export function originOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native/V8)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/packages\/([^/]+)\//.exec(url);
  if (own) return `@taskflow/${own[1]}`;
  if (url.includes('/bench/')) return 'bench harness';
  return url;
}

/**
 * `window`: only samples taken between these two times, in µs of the monotonic clock
 * (process.hrtime, which is the clock V8 stamps profiles with on Linux), e.g. the drain alone.
 */
export function summarize(profile: CpuProfile, topN = 25, window?: [number, number]): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window[0] || t > window[1])) return;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const byFn = new Map<string, { fn: string; where: string; origin: string; us: number }>();
  const byOrigin = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    total += us;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const fn = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|packages)\//, '$1/')}:${lineNumber + 1}` : '';
    const origin = originOf(url, fn);
    const key = `${fn}@${where}`;
    const e = byFn.get(key) ?? { fn, where, origin, us: 0 };
    e.us += us;
    byFn.set(key, e);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((1000 * us) / busy) / 10;
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    top: [...byFn.values()].sort((a, b) => b.us - a.us).slice(0, topN)
      .map((e) => ({ fn: e.fn, where: e.where, origin: e.origin, selfMs: Math.round(e.us / 1000), pctBusy: pct(e.us) })),
    byOrigin: [...byOrigin.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN)
      .map(([origin, us]) => ({ origin, selfMs: Math.round(us / 1000), pctBusy: pct(us) })),
  };
}

export function render(name: string, s: Summary): string {
  const lines = [`${name}: ${s.busyMs} ms on CPU of ${s.totalMs} ms sampled`, '', '| self % | self ms | function | where |', '|---:|---:|---|---|'];
  for (const t of s.top) lines.push(`| ${t.pctBusy.toFixed(1)} | ${t.selfMs} | \`${t.fn}\` | ${t.where || t.origin} |`);
  lines.push('', '| self % | self ms | origin |', '|---:|---:|---|');
  for (const o of s.byOrigin) lines.push(`| ${o.pctBusy.toFixed(1)} | ${o.selfMs} | ${o.origin} |`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, from: { type: 'string' }, to: { type: 'string' } },
  });
  const window = values.from && values.to ? [Number(values.from), Number(values.to)] as [number, number] : undefined;
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    console.log(`${render(file, summarize(profile, Number(values.top), window))}\n`);
  }
}
