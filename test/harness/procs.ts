/**
 * Child processes of the harness: spawning, the JSON-lines protocol of our own drivers, and the
 * guarantee that no client outlives the test process.
 *
 * Every child is registered; when this process exits (normally or by SIGINT/SIGTERM/SIGHUP) the
 * registry sends SIGTERM to the survivors, waits briefly, then SIGKILLs them, and removes the
 * temporary directories registered with `removeAtExit`. Children other than our own Python driver
 * (which sets PR_SET_PDEATHSIG itself) run under `setpriv --pdeathsig SIGTERM`, so even a
 * SIGKILLed test process takes them down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AbortedError } from '../../src/errors.js';
import { HarnessTimeoutError, PeerProcessError } from './errors.js';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** How much of a child's stderr (and non-protocol output) is kept for error messages. */
export const OUTPUT_TAIL_CHARS = 16 * 1024;
/** Events kept per JSON child; older ones are dropped (waiters only look at retained ones). */
export const MAX_RETAINED_EVENTS = 10_000;
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** At process exit there is no event loop left, so the survivors get a short synchronous grace. */
const EXIT_GRACE_MS = 3_000;

const live = new Map<number, ChildProcess>();
const tempDirs = new Set<string>();
let exitHooksInstalled = false;

/**
 * Registers a directory a wrapper created (client state, download dir) for removal at process
 * exit, in case the test never stopped its peer. Returns the function that unregisters it.
 */
export function removeAtExit(dir: string): () => void {
  tempDirs.add(dir);
  installExitHooks();
  return () => tempDirs.delete(dir);
}

/** PIDs of children that are still running (for tests asserting nothing leaked). */
export function liveChildPids(): number[] {
  return [...live.keys()];
}

export interface TempDir {
  readonly path: string;
  /** Deletes it (a no-op for a directory the caller provided). */
  remove(): Promise<void>;
}

/** A fresh directory under the OS temp dir, also removed at process exit if still there. */
export async function createTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const forget = removeAtExit(path);
  return {
    path,
    remove: async () => {
      await rm(path, { recursive: true, force: true });
      forget();
    },
  };
}

/** The caller's download directory if given (kept), else a temporary one (removed). */
export async function downloadDir(given: string | undefined): Promise<TempDir> {
  if (given === undefined) return createTempDir('confluence-ts-leech-');
  return { path: given, remove: async () => {} };
}

/** Whether a process exists and is not a zombie. */
export function isProcessAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function killSurvivorsSync(): void {
  const pids = [...live.keys()];
  for (const pid of pids) signalQuietly(pid, 'SIGTERM');
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + EXIT_GRACE_MS;
  while (pids.some(isProcessAlive) && Date.now() < deadline) Atomics.wait(nap, 0, 0, 20);
  for (const pid of pids) if (isProcessAlive(pid)) signalQuietly(pid, 'SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', killSurvivorsSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killSurvivorsSync();
      // Re-raise only if nobody else handles it, so the default action (exit) still happens.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

export interface SpawnOptions {
  /** Names the child in errors. */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run under `setpriv --pdeathsig SIGTERM` (same PID: setpriv execs the command). */
  dieWithParent?: boolean;
  /** Keep stdout for the caller (JSON protocol) instead of folding it into the output tail. */
  pipeStdout?: boolean;
}

/** A running child: its PID, its exit, the tail of its output, and a stop that always finishes. */
export class TrackedChild {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  readonly process: ChildProcess;
  #exit: ExitInfo | undefined;
  #tail = '';

  constructor(opts: SpawnOptions) {
    this.name = opts.name;
    const [command, args] = opts.dieWithParent
      ? ['setpriv', ['--pdeathsig', 'SIGTERM', '--', opts.command, ...opts.args]]
      : [opts.command, [...opts.args]];
    const cp = spawn(command, args, {
      stdio: 'pipe',
      env: opts.env ?? process.env,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
    cp.on('error', (err) => this.appendTail(`spawn error: ${err.message}\n`));
    cp.stdin?.on('error', () => {});
    if (cp.pid === undefined) {
      throw new PeerProcessError(`${opts.name}: cannot run ${command} ${args.join(' ')}`);
    }
    this.pid = cp.pid;
    this.process = cp;
    cp.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.appendTail(chunk));
    if (!opts.pipeStdout)
      cp.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.appendTail(chunk));
    this.exited = new Promise((resolve) => {
      cp.once('exit', (code, signal) => {
        live.delete(this.pid);
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
    live.set(this.pid, cp);
    installExitHooks();
  }

  /** How the child ended, or undefined while it runs. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  appendTail(text: string): void {
    this.#tail = (this.#tail + text).slice(-OUTPUT_TAIL_CHARS);
  }

  outputTail(): string {
    return this.#tail;
  }

  describeExit(): string {
    const e = this.#exit;
    if (!e) return `${this.name} (pid ${this.pid}) is running`;
    const how = e.signal ? `signal ${e.signal}` : `code ${e.code}`;
    return `${this.name} (pid ${this.pid}) exited with ${how}; output tail:\n${this.#tail.slice(-4000)}`;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
  async stop(opts: { graceMs?: number } = {}): Promise<ExitInfo> {
    if (this.#exit) return this.#exit;
    signalQuietly(this.pid, 'SIGTERM');
    const timer = setTimeout(() => signalQuietly(this.pid, 'SIGKILL'), opts.graceMs ?? DEFAULT_STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function spawnTracked(opts: SpawnOptions): TrackedChild {
  return new TrackedChild(opts);
}

/** Stops every child still registered (for an `after()` hook). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all(
    [...live.keys()].map(
      (pid) =>
        new Promise<void>((resolve) => {
          const cp = live.get(pid);
          if (!cp || cp.exitCode !== null || cp.signalCode !== null) return resolve();
          cp.once('exit', () => resolve());
          signalQuietly(pid, 'SIGTERM');
          setTimeout(() => signalQuietly(pid, 'SIGKILL'), DEFAULT_STOP_GRACE_MS).unref();
        }),
    ),
  );
}

/** One line of a driver's stdout protocol. */
export interface JsonEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface WaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  /** Only events with an index at or after this one match (see `JsonChild.eventCount`). */
  since?: number;
}

interface Waiter {
  readonly predicate: (e: JsonEvent) => boolean;
  readonly since: number;
  readonly resolve: (e: JsonEvent) => void;
  readonly reject: (err: Error) => void;
}

/**
 * A child speaking JSON lines on stdout whose first line is `{"event":"ready",...}`. Later lines
 * are retained and matched by `waitForEvent`; commands go to its stdin as JSON lines.
 */
export class JsonChild {
  readonly child: TrackedChild;
  #ready: JsonEvent | undefined;
  #startupMs = 0;
  #events: JsonEvent[] = [];
  #dropped = 0;
  #waiters = new Set<Waiter>();

  constructor(child: TrackedChild) {
    this.child = child;
    const stdout = child.process.stdout;
    if (!stdout) throw new PeerProcessError(`${child.name}: no stdout pipe`);
    createInterface({ input: stdout, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      this.#onLine(line),
    );
    void child.exited.then(() => {
      for (const w of this.#waiters) w.reject(new PeerProcessError(child.describeExit()));
      this.#waiters.clear();
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** The ready line (throws before it arrived). */
  get ready(): JsonEvent {
    if (!this.#ready) throw new PeerProcessError(`${this.child.name}: not ready yet`);
    return this.#ready;
  }

  /** Milliseconds from spawn to the ready line. */
  get startupMs(): number {
    return this.#startupMs;
  }

  /** Index the next event will get; pass it as `since` to wait only for newer events. */
  get eventCount(): number {
    return this.#dropped + this.#events.length;
  }

  /** The most recent retained event satisfying `predicate`. */
  latest(predicate: (e: JsonEvent) => boolean): JsonEvent | undefined {
    return this.#events.findLast(predicate);
  }

  #onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.child.appendTail(`stdout: ${line}\n`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as JsonEvent).event !== 'string') {
      this.child.appendTail(`stdout: ${line}\n`);
      return;
    }
    const ev = parsed as JsonEvent;
    const index = this.eventCount;
    this.#events.push(ev);
    if (this.#events.length > MAX_RETAINED_EVENTS) {
      this.#events.shift();
      this.#dropped++;
    }
    for (const w of this.#waiters) {
      if (index >= w.since && w.predicate(ev)) {
        this.#waiters.delete(w);
        w.resolve(ev);
      }
    }
  }

  /** Resolves with the first retained or future event (from `since`) matching `predicate`. */
  waitForEvent(predicate: (e: JsonEvent) => boolean, opts: WaitOptions = {}): Promise<JsonEvent> {
    const since = opts.since ?? 0;
    const found = this.#events.find((e, i) => i + this.#dropped >= since && predicate(e));
    if (found) return Promise.resolve(found);
    if (this.child.exitInfo) return Promise.reject(new PeerProcessError(this.child.describeExit()));
    if (opts.signal?.aborted) return Promise.reject(new AbortedError({ cause: opts.signal.reason }));
    return new Promise<JsonEvent>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => finish(() => reject(new AbortedError({ cause: opts.signal?.reason })));
      const finish = (settle: () => void): void => {
        this.#waiters.delete(waiter);
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const waiter: Waiter = {
        predicate,
        since,
        resolve: (e) => finish(() => resolve(e)),
        reject: (err) => finish(() => reject(err)),
      };
      this.#waiters.add(waiter);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        const ms = opts.timeoutMs;
        timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new HarnessTimeoutError(
                  `${this.child.name}: no matching event after ${ms} ms; output tail:\n${this.child.outputTail().slice(-4000)}`,
                ),
              ),
            ),
          ms,
        );
      }
    });
  }

  /** Writes one JSON command line to the child's stdin. */
  send(command: Record<string, unknown>): void {
    this.child.process.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  async waitReady(timeoutMs: number, signal: AbortSignal | undefined): Promise<JsonEvent> {
    const t0 = performance.now();
    const first = await this.waitForEvent(() => true, { timeoutMs, signal }).catch((err: unknown) => {
      if (err instanceof HarnessTimeoutError) {
        throw new HarnessTimeoutError(
          `${this.child.name} did not report ready within ${timeoutMs} ms; output tail:\n${this.child.outputTail().slice(-4000)}`,
        );
      }
      throw err;
    });
    if (first.event !== 'ready') {
      throw new PeerProcessError(
        `${this.child.name} failed to start: ${JSON.stringify(first)}; output tail:\n${this.child.outputTail().slice(-4000)}`,
        { event: first },
      );
    }
    this.#ready = first;
    this.#startupMs = performance.now() - t0;
    return first;
  }

  stop(opts: { graceMs?: number } = {}): Promise<ExitInfo> {
    return this.child.stop(opts);
  }
}

export interface SpawnJsonOptions extends Omit<SpawnOptions, 'pipeStdout'> {
  /** Default 30 s. */
  readyTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

export const DEFAULT_READY_TIMEOUT_MS = 30_000;

/**
 * Spawns a JSON-lines child and waits for its ready line. On failure (timeout, abort, a first
 * line that is not `ready`, exit) the child is stopped and the error carries its stderr tail.
 */
export async function spawnJsonChild(opts: SpawnJsonOptions): Promise<JsonChild> {
  if (opts.signal?.aborted) throw new AbortedError({ cause: opts.signal.reason });
  const jc = new JsonChild(spawnTracked({ ...opts, pipeStdout: true }));
  try {
    await jc.waitReady(opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, opts.signal);
    return jc;
  } catch (err) {
    await jc.stop({ graceMs: 2_000 });
    throw err;
  }
}

/** Picks ports not handed out twice by this process, even after they are closed again. */
const handedOut = new Set<number>();
const FREE_PORT_ATTEMPTS = 50;

/**
 * A port that is free on both TCP and UDP of `host` right now (BitTorrent clients use the same
 * number for TCP and uTP/DHT). Another process can still take it before the caller binds it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < FREE_PORT_ATTEMPTS; i++) {
    const port = await tryFreePort(host);
    if (port !== undefined && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new PeerProcessError(`no port free on both TCP and UDP of ${host} after ${FREE_PORT_ATTEMPTS} tries`);
}

async function tryFreePort(host: string): Promise<number | undefined> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, resolve);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port, exclusive: true }, resolve);
    });
    return port;
  } catch {
    return undefined;
  } finally {
    try {
      udp.close();
    } catch {
      // never bound
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
