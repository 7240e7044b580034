/**
 * A PostgreSQL cluster of the test's own (initdb into a fresh directory under /tmp, its own
 * port), for tests that stop and restart the database: never the shared one. Stopped with
 * `pg_ctl -m fast` (clients are told and disconnected, checkpoint) or `-m immediate` (the
 * server is killed; recovery at the next start, as after a crash). Run as the `postgres` user
 * when the tests run as root (initdb refuses root).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export type StopMode = 'fast' | 'immediate';

export interface PrivateCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dir: string;
  start(): Promise<void>;
  stop(mode: StopMode): Promise<void>;
  restart(mode: StopMode): Promise<void>;
  /** Stops it (immediately) and deletes its directory. */
  destroy(): Promise<void>;
}

/** The newest PostgreSQL's bin directory on this machine. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL under ${root}`);
  return join(root, versions[0]!, 'bin');
}

async function asPostgres(bin: string, args: string[]): Promise<void> {
  const root = process.getuid?.() === 0;
  const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    await exec(cmd, argv, { timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** Creates and starts a cluster on `port`, its directory named `<prefix>…` under /tmp. */
export async function startPrivateCluster(opts: { port: number; prefix: string }): Promise<PrivateCluster> {
  const bin = binDir();
  const dir = mkdtempSync(opts.prefix);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (process.getuid?.() === 0) {
    const { stdout } = await exec('id', ['-u', 'postgres']);
    const uid = Number(stdout.trim());
    chownSync(dir, uid, uid);
  }
  chmodSync(dir, 0o700);
  await asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const settings = [
    `-p ${opts.port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`,
    // Faster for a test; a stop or a kill of the server (not of the machine) loses nothing.
    '-c fsync=off', '-c max_connections=60', '-c shared_buffers=32MB',
  ].join(' ');
  const pgCtl = (...args: string[]) => asPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  const cluster: PrivateCluster = {
    url: `postgres://postgres@127.0.0.1:${opts.port}/postgres`,
    port: opts.port,
    dir,
    start: () => pgCtl('-o', settings, '-l', log, '-w', '-t', '60', 'start'),
    stop: (mode) => pgCtl('-m', mode, '-w', '-t', '60', 'stop'),
    async restart(mode) {
      await cluster.stop(mode);
      await cluster.start();
    },
    async destroy() {
      await pgCtl('-m', 'immediate', '-w', 'stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return cluster;
}
