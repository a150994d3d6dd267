/**
 * Peer exchange (BEP 11, ut_pex) for one torrent: tells each peer that supports it which peers we
 * are connected to (at most one message a minute, see PexState), and dials the peers others tell
 * us about. Off for private torrents and with -pex=false.
 */
import type { Clock } from '../clock.js';
import type { PeerAddress } from '../discovery/peer-address.js';
import {
  decodeUtPex,
  encodeUtPex,
  PEX_FLAGS,
  type PexPeer,
  PexState,
  UT_PEX_EXTENSION,
} from '../protocol/ut-pex.js';
import type { Peer } from './peer.js';

/** Our id for ut_pex messages (what peers use when sending to us). */
export const UT_PEX_ID = 2;

export interface PexHost {
  readonly clock: Clock;
  peers(): Iterable<Peer>;
  found(peers: readonly PeerAddress[]): void;
  /** Whether the peer has every piece (advertised with the seed flag). */
  isSeed(peer: Peer): boolean;
}

export class PeerExchange {
  readonly #h: PexHost;
  readonly #states = new Map<Peer, PexState>();

  constructor(host: PexHost) {
    this.#h = host;
  }

  /** The peer's extended handshake arrived: start telling it about others if it speaks ut_pex. */
  peerReady(peer: Peer): void {
    if (peer.extended?.m.has(UT_PEX_EXTENSION) && !this.#states.has(peer)) {
      this.#states.set(peer, new PexState({ clock: this.#h.clock }));
      this.#send(peer);
    }
  }

  peerGone(peer: Peer): void {
    this.#states.delete(peer);
  }

  /** A ut_pex message from `peer`; throws on a malformed one (the caller closes the peer). */
  message(payload: Uint8Array): void {
    const m = decodeUtPex(payload);
    const peers = [...m.added, ...m.added6];
    if (peers.length > 0) this.#h.found(peers);
  }

  /** Sends what is due (called from the torrent's housekeeping). */
  tick(): void {
    for (const peer of this.#states.keys()) this.#send(peer);
  }

  #send(peer: Peer): void {
    const state = this.#states.get(peer);
    const theirId = peer.extended?.m.get(UT_PEX_EXTENSION);
    if (!state || theirId === undefined || peer.closed || state.nextAllowedAt !== undefined) return;
    const others: PexPeer[] = [];
    for (const p of this.#h.peers()) {
      const address = p === peer ? undefined : p.listenAddress;
      if (!address || p.closed) continue;
      let flags = p.source === 'incoming' ? 0 : PEX_FLAGS.reachable;
      if (p.link.encrypted) flags |= PEX_FLAGS.preferEncryption;
      if (p.link.transport === 'utp') flags |= PEX_FLAGS.supportsUtp;
      if (this.#h.isSeed(p)) flags |= PEX_FLAGS.seed;
      others.push({ address, flags });
    }
    const m = state.next(others);
    if (m) peer.wire.send({ type: 'extended', id: theirId, payload: encodeUtPex(m) });
  }
}
