/**
 * The web view's static page: web/index.html, app.js, style.css, and uPlot from its package, read
 * once at start and served from memory, so the page works offline and nothing is built at run time.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { InputError } from '../errors.ts';
import { packagePath } from '../package-files.ts';

/** One file of the page, as served. */
export interface PageAsset {
  body: Buffer;
  /** Its content type. */
  type: string;
}

const require = createRequire(import.meta.url);

/** Request path → shipped file and its content type. */
const ASSET_FILES: ReadonlyArray<[string, () => string, string]> = [
  ['/', () => packagePath('web', 'index.html'), 'text/html; charset=utf-8'],
  ['/app.js', () => packagePath('web', 'app.js'), 'text/javascript; charset=utf-8'],
  ['/style.css', () => packagePath('web', 'style.css'), 'text/css; charset=utf-8'],
  // Browsers ask for an icon; without one every page load logs a 404 in the console.
  ['/favicon.svg', () => packagePath('web', 'favicon.svg'), 'image/svg+xml'],
  [
    '/vendor/uPlot.iife.min.js',
    () => require.resolve('uplot/dist/uPlot.iife.min.js'),
    'text/javascript; charset=utf-8',
  ],
  ['/vendor/uPlot.min.css', () => require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
];

/** Reads every page file, by request path; throws InputError naming the first one missing. */
export async function loadPageAssets(): Promise<Map<string, PageAsset>> {
  const assets = new Map<string, PageAsset>();
  for (const [path, file, type] of ASSET_FILES) {
    let location = '';
    try {
      location = file();
      assets.set(path, { body: await readFile(location), type });
    } catch (err) {
      throw new InputError(
        `the web view cannot read its page file ${location || path} (${(err as Error).message}); ` +
          'reinstall flowtap with its web/ folder and the uplot package',
        { cause: err },
      );
    }
  }
  return assets;
}
