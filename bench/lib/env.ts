/** The machine and the versions a result was measured with, recorded with every result. */
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { adminQuery } from './pg.ts';

const require = createRequire(import.meta.url);

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version;
  } catch {
    // packages whose exports hide package.json
    try {
      const dir = require.resolve(pkg).replace(/(node_modules\/(?:@[^/]+\/)?[^/]+)\/.*$/, '$1');
      return JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')).version;
    } catch {
      return 'unknown';
    }
  }
}

/**
 * The Taskflow code measured: the commit of the checkout at `cwd` (default: this one), and the
 * files of its packages/ changed since (the work tree may be ahead).
 */
export function taskflowRevision(cwd = fileURLToPath(new URL('../..', import.meta.url))): { commit: string; dirtyPackages: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd, encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => l.slice(3));
    return { commit, dirtyPackages: dirty };
  } catch {
    return { commit: 'unknown', dirtyPackages: [] };
  }
}

export async function describeEnvironment(databaseUrl: string, redisUrl: string): Promise<Record<string, unknown>> {
  const settings = await adminQuery<{ name: string; setting: string }>(databaseUrl,
    `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections', 'server_version')`);
  const redis = new Redis(redisUrl);
  let redisInfo = '';
  try {
    redisInfo = await redis.info('server');
  } finally {
    redis.disconnect();
  }
  return {
    taskflow: taskflowRevision(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
    redis: /redis_version:(\S+)/.exec(redisInfo)?.[1],
    versions: {
      bullmq: version('bullmq'),
      'pg-boss': version('pg-boss'),
      'graphile-worker': version('graphile-worker'),
      ioredis: version('ioredis'),
      pg: version('pg'),
    },
  };
}
