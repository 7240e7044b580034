/**
 * Creating a PGlite database (initdb) in a process of its own, as PostgreSQL's initdb is a
 * program of its own.
 *
 * In the server's process it would set the process's memory high-water mark for good: PGlite's
 * initdb runs a second PGlite instance and a second WebAssembly module beside the first, and
 * its thousands of catalog statements make V8 optimize the SQL parser, one 105 KB function
 * that its optimizing compiler takes 640 MB and seconds to compile. Measured with
 * `--trace-wasm-compilation-times` and /proc/<pid>/status: an empty data directory opened in
 * the server's process peaked at 1,090-1,165 MiB of RSS (a directory that exists: 287). The
 * process here runs with `--liftoff-only` (no optimizing compiler: initdb is run once) and
 * peaks at 550-620 MiB, then exits, returning that memory.
 *
 * Run as a script: `node --liftoff-only pgliteInitdb.ts <dataDir> <startParams JSON> [<tar>]`.
 * With a tar path (for `memory://`), the new database is written there as a tar file for the
 * caller to load.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const SCRIPT = fileURLToPath(import.meta.url);

/** Runs this file as a child process on `args`; rejects with its standard error if it fails. */
function runChild(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--liftoff-only', SCRIPT, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`initdb (a PGlite process) failed with ${signal ?? `exit code ${code}`}: ${stderr.trim() || 'no output'}`));
    });
  });
}

/**
 * Creates the database in `pgdata` (a directory that holds none), in a child process. It is
 * built in a sibling directory and renamed into place, so a start killed during initdb leaves
 * no half-made database behind.
 */
export async function initDataDir(pgdata: string, startParams: string[]): Promise<void> {
  const empty = !existsSync(pgdata) || readdirSync(pgdata).length === 0;
  if (!empty) throw new Error(`${pgdata} holds files but no database (no PG_VERSION): move them away, or start with an empty directory`);
  const building = `${pgdata}.initdb`;
  rmSync(building, { recursive: true, force: true });
  await runChild([building, JSON.stringify(startParams)]);
  rmSync(pgdata, { recursive: true, force: true });
  renameSync(building, pgdata);
}

/** A new in-memory database, made in a child process: the tar of its files, to load with `loadDataDir`. */
export async function initInMemory(startParams: string[]): Promise<Blob> {
  const tar = join(tmpdir(), `taskflow-initdb-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  try {
    await runChild(['memory://', JSON.stringify(startParams), tar]);
    return new Blob([readFileSync(tar)]);
  } finally {
    rmSync(tar, { force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const [dataDir, params, tar] = argv;
  const { PGlite } = await import('@electric-sql/pglite');
  const pg = await PGlite.create({ dataDir: dataDir!, startParams: JSON.parse(params!) as string[] });
  if (tar) writeFileSync(tar, Buffer.from(await (await pg.dumpDataDir('none')).arrayBuffer()));
  await pg.close();
}

if (process.argv[1] === SCRIPT) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
