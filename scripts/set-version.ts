/**
 * Sets one version on the root and every workspace package, and on the @taskflow packages'
 * references to each other (exact versions: they are released together). `npm version
 * --workspaces` changes the versions but leaves those references at the old version, which its
 * own install then looks for on the registry. Run `npm install` afterwards to bring
 * package-lock.json along. The release steps: docs/releasing.md.
 *
 *   npm run set-version -- 0.2.0
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;

type Manifest = { name: string; version: string; workspaces?: string[] } & Partial<Record<(typeof DEPENDENCY_FIELDS)[number], Record<string, string>>>;

const version = process.argv[2] ?? '';
if (!SEMVER.test(version)) {
  console.error(`usage: npm run set-version -- <major.minor.patch[-prerelease]> (got "${version}")`);
  process.exit(2);
}

const path = (file: string) => fileURLToPath(new URL(`../${file}`, import.meta.url));
const read = (file: string): Manifest => JSON.parse(readFileSync(path(file), 'utf8'));

const files = ['package.json', ...(read('package.json').workspaces ?? []).map((w) => `${w}/package.json`)];
const ours = new Set(files.slice(1).map((f) => read(f).name));
for (const file of files) {
  const manifest = read(file);
  manifest.version = version;
  for (const field of DEPENDENCY_FIELDS) {
    for (const name of Object.keys(manifest[field] ?? {})) if (ours.has(name)) manifest[field]![name] = version;
  }
  writeFileSync(path(file), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`${file}: ${manifest.name}@${version}`);
}
console.log('now: npm install (updates package-lock.json)');
