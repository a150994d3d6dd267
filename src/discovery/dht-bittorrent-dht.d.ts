/**
 * The part of bittorrent-dht 11 (untyped JavaScript) that dht.ts uses. Only dht.ts imports the
 * package; everything it gets from it is checked there before going further.
 */
declare module 'bittorrent-dht' {
  import { EventEmitter } from 'node:events';

  interface Contact {
    host: string;
    port: number;
    id?: Buffer;
  }

  interface ClientOptions {
    nodeId: Buffer;
    /** host:port strings; `[]` means none (leaving it out means the public routers). */
    bootstrap: readonly string[];
    /** Handed to k-rpc-socket unchanged. */
    socket: unknown;
    maxTables: number;
    maxValues: number;
    maxPeers: number;
    maxAge: number;
    verify: (signature: unknown, message: Buffer, publicKey: unknown) => boolean;
  }

  /** A BEP 44 item as the library decoded it (values are whatever bencode 2 made of them). */
  interface Item {
    v: unknown;
    k?: unknown;
    sig?: unknown;
    seq?: unknown;
    salt?: unknown;
  }

  export default class DHT extends EventEmitter {
    constructor(opts: ClientOptions);
    readonly nodeId: Buffer;
    readonly nodes: { count(): number; toArray(): Contact[] };
    /** Without an id the node is pinged first and added if it answers. */
    addNode(node: Contact | Required<Contact>): void;
    announce(infoHash: Buffer, port: number, cb: (err?: Error | null) => void): void;
    lookup(infoHash: Buffer, cb: (err?: Error | null) => void): () => void;
    get(
      target: Buffer,
      opts: { salt?: Buffer; cache?: boolean },
      cb: (err: Error | null | undefined, item: Item | null) => void,
    ): void;
    destroy(cb?: () => void): void;
  }
}
