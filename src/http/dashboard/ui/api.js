// Every call to the service goes through here: same origin only, always with the CSRF header the
// access-control layer asks of state-changing requests, and errors as the server's one-line text.

const CSRF_HEADERS = { 'X-Confluence-CSRF': '1' };
const unauthorizedListeners = new Set();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** `f()` runs whenever the service answers 401 (the dashboard's login is needed). */
export function onUnauthorized(f) {
  unauthorizedListeners.add(f);
}

/** The response, or an ApiError carrying the server's message; an abort rejects with AbortError. */
export async function request(path, { method = 'GET', body, headers = {}, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      body,
      signal,
      headers: { ...CSRF_HEADERS, ...headers },
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the service cannot be reached');
  }
  if (res.status === 401) for (const f of unauthorizedListeners) f();
  if (!res.ok) {
    const text = (await res.text()).trim();
    throw new ApiError(res.status, text || `${res.status} ${res.statusText}`);
  }
  return res;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

/**
 * Runs `task` now and again `intervalMs` after each run ends, until `signal` aborts; a failed run
 * goes to `onError` and the next one still happens. Runs are skipped while the page is hidden.
 */
export function repeat(task, intervalMs, signal, onError) {
  let timer;
  const run = async () => {
    if (!document.hidden) {
      try {
        await task();
      } catch (e) {
        if (e.name !== 'AbortError') onError(e);
      }
    }
    if (!signal.aborted) timer = setTimeout(run, intervalMs);
  };
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  run();
}
