/**
 * /debug/ (with -debugOnMain): Node's own diagnostics as JSON, for a person looking into a live
 * service: heap, event-loop lag, active resources.
 */
import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { NotFoundError } from './http-errors.js';

// Sampled continuously once the module loads; cheap (a timer in libuv).
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

const PAGES: Record<string, () => object> = {
  '/debug/heap': () => ({ ...getHeapStatistics(), memoryUsage: process.memoryUsage() }),
  '/debug/eventloop': () => ({
    unit: 'ms',
    min: loopDelay.min / 1e6,
    mean: loopDelay.mean / 1e6,
    p50: loopDelay.percentile(50) / 1e6,
    p99: loopDelay.percentile(99) / 1e6,
    max: loopDelay.max / 1e6,
  }),
  '/debug/resources': () => ({ active: process.getActiveResourcesInfo() }),
};

export function serveDebug(res: ServerResponse, path: string): void {
  const page = path === '/debug/' ? () => ({ pages: Object.keys(PAGES) }) : PAGES[path];
  if (!page) throw new NotFoundError('404 page not found');
  const body = Buffer.from(`${JSON.stringify(page(), null, 2)}\n`);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
