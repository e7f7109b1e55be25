/**
 * `npm run bench -- NAME [--json]`: runs one benchmark, which starts the services it needs and
 * compares against a reference measured in the same run. The last line of output is the figures
 * as one JSON object.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

interface BenchModule {
  run(args: { json: boolean }): Promise<Record<string, number | string>>;
}

const here = import.meta.dirname;
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('-'));
const json = args.includes('--json');
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [--json]`);
  process.exit(2);
}
const mod = (await import(join(here, `${name}.ts`))) as BenchModule;
const figures = await mod.run({ json });
if (!json) {
  for (const [key, value] of Object.entries(figures)) console.log(`${key.padEnd(28)} ${value}`);
}
console.log(JSON.stringify(figures));
process.exit(0);
