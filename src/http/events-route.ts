/**
 * /events?ih=: piece-state changes as they happen, over a websocket (text frames, as the original:
 * `{"PieceChanged":N}`) or, with `Accept: text/event-stream`, as server-sent events.
 *
 * Beyond the original: the socket upgrades at once, before the info is known; `?state=1` adds the
 * piece's state to every frame and sends `{"Snapshot":[…]}` first; the server pings; client
 * messages are ignored rather than ending the stream; and a slow client never makes memory grow:
 * while its send buffer is over SEND_BUFFER_LIMIT, changes are coalesced (one pending entry per
 * piece, with the latest state) and sent when it drains.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Clock, TimerHandle } from '../clock.js';
import type { PieceState } from '../engine/piece-state.js';
import type { TorrentRef } from '../engine/torrent-ref.js';
import type { PieceIndex } from '../metainfo/geometry.js';
import { originalPieceState } from './piece-state-json.js';

/** Bytes a subscriber may have queued before changes are coalesced. */
export const SEND_BUFFER_LIMIT = 256 * 1024;
export const PING_INTERVAL_MS = 30_000;
/** Largest message we accept from a websocket client (they are ignored anyway). */
export const MAX_CLIENT_MESSAGE = 4096;

/** Where frames go: a websocket or an SSE response. */
interface Sink {
  send(json: string): void;
  buffered(): number;
  onDrain(f: () => void): void;
  ping(): void;
  close(): void;
}

export class EventsEndpoint {
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE,
    perMessageDeflate: false,
  });
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Completes a websocket upgrade and streams the torrent's changes until either side closes. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, torrent: TorrentRef, withState: boolean): void {
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('message', () => undefined);
      ws.on('error', () => ws.terminate());
      let alive = true;
      ws.on('pong', () => {
        alive = true;
      });
      const sink: Sink = {
        send: (json) => ws.send(json),
        buffered: () => ws.bufferedAmount,
        onDrain: (f) => ws.once('drain', f),
        ping: () => {
          if (!alive) return ws.terminate();
          alive = false;
          ws.ping();
        },
        close: () => ws.close(),
      };
      // `ws` has no 'drain' of its own: forward the socket's.
      socket.on('drain', () => ws.emit('drain'));
      const stop = this.#stream(torrent, sink, withState);
      ws.once('close', stop);
    });
  }

  /** Server-sent events on a plain response. */
  sse(res: ServerResponse, torrent: TorrentRef, withState: boolean): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    const sink: Sink = {
      send: (json) => res.write(`data: ${json}\n\n`),
      buffered: () => res.writableLength,
      onDrain: (f) => res.once('drain', f),
      ping: () => res.write(': ping\n\n'),
      close: () => res.end(),
    };
    const stop = this.#stream(torrent, sink, withState);
    res.once('close', stop);
  }

  close(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }

  /** Wires a torrent's changes into a sink; returns the teardown. */
  #stream(torrent: TorrentRef, sink: Sink, withState: boolean): () => void {
    const pending = new Map<PieceIndex, PieceState>();
    let draining = false;
    let closed = false;
    const frame = (index: PieceIndex, state: PieceState) =>
      JSON.stringify(
        withState ? { PieceChanged: index, State: originalPieceState(state) } : { PieceChanged: index },
      );
    const flush = () => {
      draining = false;
      for (const [index, state] of pending) {
        if (closed || sink.buffered() > SEND_BUFFER_LIMIT) break;
        pending.delete(index);
        sink.send(frame(index, state));
      }
      if (pending.size > 0 && !closed && !draining) {
        draining = true;
        sink.onDrain(flush);
      }
    };
    const onChange = ({ index, state }: { index: PieceIndex; state: PieceState }) => {
      if (closed) return;
      if (pending.size > 0 || sink.buffered() > SEND_BUFFER_LIMIT) {
        pending.delete(index);
        pending.set(index, state);
        if (!draining) {
          draining = true;
          sink.onDrain(flush);
        }
        return;
      }
      sink.send(frame(index, state));
    };
    let unsubscribe: (() => void) | undefined;
    const ac = new AbortController();
    torrent.waitInfo({ signal: ac.signal }).then(
      (info) => {
        if (closed) return;
        if (withState) {
          const states: object[] = [];
          for (let i = 0; i < info.geometry.pieceCount; i++) {
            states.push(originalPieceState(torrent.pieceState(i as PieceIndex)!));
          }
          sink.send(JSON.stringify({ Snapshot: states }));
        }
        unsubscribe = torrent.onPieceState(onChange);
      },
      () => {
        if (!closed) sink.close();
      },
    );
    let timer: TimerHandle | undefined;
    const schedulePing = () => {
      timer = this.#clock.setTimeout(() => {
        sink.ping();
        schedulePing();
      }, PING_INTERVAL_MS);
    };
    schedulePing();
    return () => {
      if (closed) return;
      closed = true;
      ac.abort();
      unsubscribe?.();
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      pending.clear();
      torrent.release();
    };
  }
}
