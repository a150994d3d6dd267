/**
 * A real browser for end-to-end tests of the dashboard: Debian's chromium (never a downloaded
 * build), driven by playwright-core, with a fresh empty profile that is removed on close.
 *
 * It must talk to nothing but loopback: every background service is off, and a proxy that does
 * not exist (the discard port on loopback) stands in for the whole network, so any request to a
 * non-loopback address fails at once instead of leaving the machine; Chromium never proxies
 * loopback. What the page requests and every console or page error are recorded for assertions.
 */
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { throwIfAborted } from '../../src/errors.js';
import { PeerProgramMissingError } from './errors.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_INSTALL_HINT = 'run `apt-get install -y chromium` (as root)';
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--no-pings',
  '--proxy-server=127.0.0.1:9',
];
const LAUNCH_TIMEOUT_MS = 60_000;

export interface BrowserRequest {
  readonly url: string;
  readonly method: string;
  /** Playwright's resource type: 'document', 'fetch', 'eventsource', 'media', … */
  readonly resourceType: string;
}

export interface BrowserProblem {
  /** 'console' for console.error and failed loads the browser logs, 'page' for uncaught errors. */
  readonly kind: 'console' | 'page';
  readonly text: string;
  /** Where it was logged from, when the browser says. */
  readonly url: string | undefined;
}

export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Every request the browser made, in order. */
  readonly requests: readonly BrowserRequest[];
  readonly problems: readonly BrowserProblem[];
  /** Requested URLs outside `origin` (there should be none). */
  foreignRequests(): string[];
  close(): Promise<void>;
}

export interface LaunchBrowserOptions {
  /** The one origin pages may talk to, e.g. the service's URL (`http://127.0.0.1:1234`). */
  readonly origin: string;
  readonly viewport?: { readonly width: number; readonly height: number };
  readonly colorScheme?: 'light' | 'dark';
  readonly signal?: AbortSignal;
}

/** Launches chromium with one page; throws PeerProgramMissingError when it is not installed. */
export async function launchBrowser(o: LaunchBrowserOptions): Promise<TestBrowser> {
  await access(CHROMIUM_PATH, constants.X_OK).catch((cause: unknown) => {
    throw new PeerProgramMissingError(`${CHROMIUM_PATH} is missing: ${CHROMIUM_INSTALL_HINT}`, { cause });
  });
  throwIfAborted(o.signal);
  const origin = new URL(o.origin).origin;
  const profile = await mkdtemp(join(tmpdir(), 'confluence-ts-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS],
      headless: true,
      acceptDownloads: false,
      serviceWorkers: 'block',
      viewport: o.viewport ?? { width: 1280, height: 900 },
      colorScheme: o.colorScheme ?? 'light',
      timeout: LAUNCH_TIMEOUT_MS,
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  const requests: BrowserRequest[] = [];
  const problems: BrowserProblem[] = [];
  context.on('request', (r) =>
    requests.push({ url: r.url(), method: r.method(), resourceType: r.resourceType() }),
  );
  context.on('console', (m) => {
    if (m.type() === 'error')
      problems.push({ kind: 'console', text: m.text(), url: m.location().url || undefined });
  });
  context.on('weberror', (e) => problems.push({ kind: 'page', text: String(e.error()), url: undefined }));
  const page = context.pages()[0] ?? (await context.newPage());
  let closed = false;
  return {
    context,
    page,
    requests,
    problems,
    foreignRequests: () => requests.map((r) => r.url).filter((u) => !u.startsWith(`${origin}/`)),
    async close() {
      if (closed) return;
      closed = true;
      await context.close().finally(() => rm(profile, { recursive: true, force: true }));
    },
  };
}
