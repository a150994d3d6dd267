/**
 * Dialling a peer over TCP and uTP. TCP starts first; uTP starts when TCP fails or after a short
 * head start, whichever comes first. The first transport to connect is kept and, when the caller
 * gives `establish` (the BitTorrent handshake), established; the other attempt is destroyed once
 * that succeeds. If establishing fails, the other transport takes over at once: libtorrent with
 * incoming TCP disabled still accepts TCP connections and closes them straight away, so a TCP
 * connection alone does not prove the peer speaks TCP.
 *
 * Why a head start rather than two simultaneous attempts (measured on loopback against
 * libtorrent 2.0.8, dial plus handshake): with both started at once, every dial of a peer that
 * takes both opened two connections and closed one unused (uTP connects as fast as TCP here, and
 * won 2 of 5), while TCP is the better transport to keep (490 MB/s here against uTP's 185). With
 * TCP first, a TCP peer costs no uTP attempt (5 of 5 over TCP, ~1.5 ms), a uTP-only peer that
 * refuses TCP or accepts and closes it got uTP in 1.4-2.7 ms, and only a peer whose TCP is
 * silently dropped waits the head start.
 */
import { isIP, isIPv4, type Socket, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { AbortedError, InternalError } from '../errors.js';
import { ConnectTimeoutError, DialError, TransportAddressError } from './errors.js';
import type { UtpTransport } from './utp.js';

/**
 * TCP's head start before uTP is tried as well. Both connect within one round trip, so this only
 * matters for a peer whose TCP is silently dropped: 500 ms keeps such a uTP-only peer within a
 * second while leaving ordinary Internet round trips to TCP alone.
 */
export const DEFAULT_UTP_HEAD_START_MS = 500;

export type TransportKind = 'tcp' | 'utp';

export interface DialTarget {
  /** An IP literal (uTP is tried for IPv4 only). */
  readonly host: string;
  readonly port: number;
}

/**
 * Completes the connection on a connected stream (the BitTorrent handshake) and takes ownership
 * of it; `signal` fires when the dial is cancelled or timed out. A rejection counts as that
 * transport failing (the stream is destroyed if it is not already).
 */
export type Establish<T> = (
  stream: Duplex,
  ctx: { transport: TransportKind; signal: AbortSignal },
) => Promise<T>;

export interface DialPeerOptions {
  /** Try TCP (false: uTP only). */
  readonly tcp: boolean;
  /** Try uTP over this transport (absent: TCP only). */
  readonly utp?: UtpTransport;
  readonly signal?: AbortSignal;
  /** Deadline for the whole dial: connecting, and establishing when given. */
  readonly timeoutMs: number;
  /** Default DEFAULT_UTP_HEAD_START_MS; 0 starts both at once. */
  readonly utpHeadStartMs?: number;
  readonly clock?: Clock;
}

export interface DialResult {
  readonly stream: Duplex;
  readonly transport: TransportKind;
}

type AttemptState = 'off' | 'scheduled' | 'connecting' | 'connected' | 'establishing' | 'failed';

interface Attempt {
  readonly kind: TransportKind;
  state: AttemptState;
  stream: Duplex | undefined;
  readonly cancel: AbortController;
}

function ignore(): void {}

function destroyQuietly(stream: Duplex): void {
  stream.on('error', ignore);
  stream.destroy();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Resolves with the first stream that connected (and was established, with `establish`). Rejects
 * with `DialError` (ERR_DIAL; `causes` holds each transport's error) when every transport failed
 * or the deadline passed, with `AbortedError` when the signal fired, with `TransportAddressError`
 * for a target that is not an IP literal and port.
 */
export function dialPeer<T>(
  target: DialTarget,
  o: DialPeerOptions & { readonly establish: Establish<T> },
): Promise<DialResult & { readonly established: T }>;
export function dialPeer(target: DialTarget, o: DialPeerOptions): Promise<DialResult>;
export function dialPeer<T>(
  target: DialTarget,
  o: DialPeerOptions & { readonly establish?: Establish<T> },
): Promise<DialResult & { readonly established: T | undefined }> {
  const { host, port } = target;
  const { signal } = o;
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const clock = o.clock ?? systemClock;
  const headStartMs = o.utpHeadStartMs ?? DEFAULT_UTP_HEAD_START_MS;
  return new Promise((resolve, reject) => {
    if (!o.tcp && !o.utp) {
      reject(new InternalError('dialPeer needs at least one transport'));
      return;
    }
    if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0 || !(headStartMs >= 0)) {
      reject(new InternalError(`bad dial timing: timeout ${o.timeoutMs} ms, head start ${headStartMs} ms`));
      return;
    }
    if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      reject(new TransportAddressError(`not an IP address and port: ${where}`));
      return;
    }
    if (signal?.aborted) {
      reject(new AbortedError({ cause: signal.reason }));
      return;
    }
    const causes: { tcp?: unknown; utp?: unknown } = {};
    const tcp: Attempt = {
      kind: 'tcp',
      state: o.tcp ? 'connecting' : 'off',
      stream: undefined,
      cancel: new AbortController(),
    };
    const utp: Attempt = { kind: 'utp', state: 'off', stream: undefined, cancel: new AbortController() };
    if (o.utp) {
      if (isIPv4(host)) utp.state = 'scheduled';
      else causes.utp = new TransportAddressError(`uTP dials IPv4 addresses only, not ${host}`);
    }
    const other = (a: Attempt): Attempt => (a === tcp ? utp : tcp);
    let settled = false;
    let headStart: TimerHandle | undefined;

    const clearHeadStart = (): void => {
      if (headStart !== undefined) clock.clearTimeout(headStart);
      headStart = undefined;
    };
    const drop = (a: Attempt): void => {
      a.cancel.abort();
      if (a.stream) destroyQuietly(a.stream);
      a.stream = undefined;
    };
    const finish = (): void => {
      settled = true;
      clock.clearTimeout(deadline);
      clearHeadStart();
      signal?.removeEventListener('abort', onAbort);
    };
    const failAll = (err: Error): void => {
      finish();
      drop(tcp);
      drop(utp);
      reject(err);
    };
    const dialError = (why: string): DialError => {
      const parts = (['tcp', 'utp'] as const)
        .filter((k) => causes[k] !== undefined)
        .map((k) => `${k}: ${describe(causes[k])}`);
      return new DialError(`dial ${where} ${why}${parts.length > 0 ? ` (${parts.join('; ')})` : ''}`, causes);
    };
    const live = (a: Attempt): boolean => a.state !== 'off' && a.state !== 'failed';

    const fail = (a: Attempt, err: unknown): void => {
      if (settled) return;
      causes[a.kind] = err;
      a.state = 'failed';
      drop(a);
      const b = other(a);
      if (b.state === 'scheduled') startUtp();
      else if (b.state === 'connected') establish(b);
      if (!live(b)) failAll(dialError('failed'));
    };
    const connected = (a: Attempt, stream: Duplex): void => {
      if (settled) {
        destroyQuietly(stream);
        return;
      }
      a.stream = stream;
      a.state = 'connected';
      // Nobody else listens until it is established: an error now must not crash the process.
      stream.on('error', ignore);
      // One transport is up: the other is only a fallback now, not started on a timer.
      clearHeadStart();
      if (other(a).state !== 'establishing') establish(a);
    };
    const establish = (a: Attempt): void => {
      const stream = a.stream;
      if (!stream) throw new InternalError('establishing an attempt without a stream');
      a.state = 'establishing';
      stream.off('error', ignore);
      const run = o.establish;
      const step = new Promise<T | undefined>((res) =>
        res(run ? run(stream, { transport: a.kind, signal: a.cancel.signal }) : undefined),
      );
      step.then(
        (established) => {
          if (settled) return;
          finish();
          a.stream = undefined;
          drop(other(a));
          resolve({ stream, transport: a.kind, established });
        },
        (err: unknown) => fail(a, err),
      );
    };
    const startUtp = (): void => {
      if (settled || utp.state !== 'scheduled' || !o.utp) return;
      clearHeadStart();
      utp.state = 'connecting';
      o.utp.connect(host, port, { signal: utp.cancel.signal, timeoutMs: o.timeoutMs }).then(
        (stream) => connected(utp, stream),
        (err: unknown) => fail(utp, err),
      );
    };
    const onAbort = (): void => failAll(new AbortedError({ cause: signal?.reason }));
    const deadline = clock.setTimeout(() => {
      for (const a of [tcp, utp]) {
        if (live(a) && a.state !== 'scheduled') {
          causes[a.kind] = new ConnectTimeoutError(
            `${a.kind} ${where} ${a.state === 'connecting' ? 'not connected' : 'not established'} in time`,
          );
        }
      }
      failAll(dialError(`timed out after ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });

    if (tcp.state === 'connecting') {
      const socket: Socket = tcpConnect({ host, port, noDelay: true });
      tcp.stream = socket;
      const onConnect = (): void => {
        socket.off('error', onError);
        connected(tcp, socket);
      };
      const onError = (err: Error): void => {
        socket.off('connect', onConnect);
        fail(tcp, err);
      };
      socket.once('connect', onConnect);
      socket.once('error', onError);
    }
    if (utp.state === 'scheduled') {
      if (tcp.state !== 'connecting' || headStartMs === 0) startUtp();
      else headStart = clock.setTimeout(startUtp, headStartMs);
    } else if (tcp.state !== 'connecting') {
      failAll(dialError('failed'));
    }
  });
}
