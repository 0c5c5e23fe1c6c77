/** flowtap's version, read once from package.json so `--version` and exporters agree. */
import { readFileSync } from 'node:fs';
import { packagePath } from './package-files.ts';

/** Version of this flowtap build. */
export const VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string })
  .version;
