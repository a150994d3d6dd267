/**
 * The web dashboard: `GET /` is the page, `/ui/<version>/<name>` its static assets (plain HTML, CSS
 * and JavaScript modules: no framework, no build step, nothing fetched from elsewhere).
 *
 * Assets are read once, on first use, and kept in memory. `<version>` is a digest of all of them, so
 * asset responses are cacheable forever (`immutable`) and a changed dashboard gets new URLs; the page
 * itself is never cached, so it always names the current version. Relative imports between modules
 * stay inside one version.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MethodNotAllowedError, NotFoundError, sendError } from '../http-errors.js';

export const DASHBOARD_PAGE_PATH = '/';
export const DASHBOARD_ASSET_PREFIX = '/ui/';
/** Where the page names its assets: replaced by `/ui/<version>`. */
const ASSET_BASE_PLACEHOLDER = '{{ui}}';
const READ_METHODS = ['GET', 'HEAD'];

/** tsc copies no assets into dist/: they are read from the source tree, which ships beside it. */
const SOURCE_DIR = fileURLToPath(new URL('../../../../src/http/dashboard/', import.meta.url));

/** Only these extensions are served from ui/; anything else there is not an asset. */
const ASSET_TYPES: ReadonlyMap<string, string> = new Map([
  ['.js', 'text/javascript; charset=utf-8'],
  ['.css', 'text/css; charset=utf-8'],
  ['.svg', 'image/svg+xml'],
]);

/** The page may load and contact nothing but this service. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "media-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

interface Bundle {
  readonly version: string;
  readonly page: Buffer;
  readonly assets: ReadonlyMap<string, Asset>;
}

let loading: Promise<Bundle> | undefined;

/**
 * Answers `/` and everything under `/ui/` (404 for unknown assets or an old version, 405 for other
 * methods) and returns true; returns false, without touching `res`, for any other path.
 */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (path !== DASHBOARD_PAGE_PATH && !path.startsWith(DASHBOARD_ASSET_PREFIX)) return false;
  respond(req, res, path).catch((e: unknown) => sendError(res, e));
  return true;
}

async function respond(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET';
  if (!READ_METHODS.includes(method)) throw new MethodNotAllowedError(READ_METHODS);
  const bundle = await loadBundle();
  if (path === DASHBOARD_PAGE_PATH) {
    return send(res, method, bundle.page, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': PAGE_CSP,
      'Referrer-Policy': 'same-origin',
    });
  }
  const [version, name, ...deeper] = path.slice(DASHBOARD_ASSET_PREFIX.length).split('/');
  const asset = version === bundle.version && deeper.length === 0 ? bundle.assets.get(name ?? '') : undefined;
  if (!asset) throw new NotFoundError('404 page not found');
  send(res, method, asset.body, {
    'Content-Type': asset.type,
    'Cache-Control': 'public, max-age=31536000, immutable',
  });
}

function send(res: ServerResponse, method: string, body: Buffer, headers: Record<string, string>): void {
  res.writeHead(200, {
    ...headers,
    'Content-Length': String(body.length),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** One read for the life of the process; a failed read is retried by the next request. */
function loadBundle(): Promise<Bundle> {
  if (!loading) {
    loading = readBundle(SOURCE_DIR);
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

async function readBundle(dir: string): Promise<Bundle> {
  const uiDir = join(dir, 'ui');
  const names = (await readdir(uiDir)).filter((n) => ASSET_TYPES.has(extname(n))).sort();
  const digest = createHash('sha256');
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const body = await readFile(join(uiDir, name));
    digest.update(`${name}\0${body.length}\0`).update(body);
    assets.set(name, { type: ASSET_TYPES.get(extname(name))!, body });
  }
  const version = digest.digest('hex').slice(0, 16);
  const template = await readFile(join(dir, 'index.html'), 'utf8');
  const page = Buffer.from(
    template.replaceAll(ASSET_BASE_PLACEHOLDER, `${DASHBOARD_ASSET_PREFIX}${version}`),
  );
  return { version, page, assets };
}
