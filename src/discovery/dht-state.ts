/**
 * The DHT's saved state: our node id and some nodes of the routing table, so that a restart can
 * rejoin the DHT without (or before) its bootstrap routers. A JSON file, written atomically
 * (temporary file, fsync, rename) so a crash mid-write leaves the previous state intact.
 *
 * The file is outside input like any other: it is read with a size bound, every field is checked,
 * and anything wrong rejects the whole file with `DhtStateError` (the caller warns and goes on).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { throwIfAborted } from '../errors.js';
import { ipv4Scope, isUsablePort } from './dht-address.js';
import { DhtStateError } from './dht-errors.js';
import { NODE_ID_BYTES } from './dht-node-id.js';

/** A state file larger than this is not read. */
export const MAX_DHT_STATE_BYTES = 64 * 1024;
/** At most this many nodes are saved; a file listing more is refused. */
export const MAX_DHT_STATE_NODES = 256;
export const DHT_STATE_VERSION = 1;

export interface DhtStateNode {
  readonly id: Buffer;
  /** IPv4 literal. */
  readonly host: string;
  readonly port: number;
}

export interface DhtState {
  readonly id: Buffer;
  readonly nodes: readonly DhtStateNode[];
}

const HEX_ID = new RegExp(`^[0-9a-f]{${NODE_ID_BYTES * 2}}$`);

/** The file's text; nodes past `MAX_DHT_STATE_NODES` are left out. */
export function encodeDhtState(state: DhtState): string {
  return `${JSON.stringify({
    version: DHT_STATE_VERSION,
    id: state.id.toString('hex'),
    nodes: state.nodes
      .slice(0, MAX_DHT_STATE_NODES)
      .map((n) => ({ id: n.id.toString('hex'), host: n.host, port: n.port })),
  })}\n`;
}

export function decodeDhtState(text: string): DhtState {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new DhtStateError('DHT state is not JSON', { cause });
  }
  if (!isRecord(doc) || doc.version !== DHT_STATE_VERSION) {
    throw new DhtStateError(`DHT state is not version ${DHT_STATE_VERSION}`);
  }
  const nodes = doc.nodes;
  if (!Array.isArray(nodes)) throw new DhtStateError('DHT state has no node list');
  if (nodes.length > MAX_DHT_STATE_NODES) {
    throw new DhtStateError(`DHT state lists ${nodes.length} nodes, more than ${MAX_DHT_STATE_NODES}`);
  }
  return { id: parseId(doc.id), nodes: nodes.map(parseNode) };
}

function parseNode(n: unknown): DhtStateNode {
  if (!isRecord(n)) throw new DhtStateError('DHT state has a node that is not an object');
  const { host, port } = n;
  if (typeof host !== 'string' || ipv4Scope(host) === 'unusable') {
    throw new DhtStateError(`DHT state has a node with host ${JSON.stringify(host)}`);
  }
  if (typeof port !== 'number' || !isUsablePort(port)) {
    throw new DhtStateError(`DHT state has a node with port ${JSON.stringify(port)}`);
  }
  return { id: parseId(n.id), host, port };
}

function parseId(id: unknown): Buffer {
  if (typeof id !== 'string' || !HEX_ID.test(id)) {
    throw new DhtStateError(`DHT state has a node id that is not ${NODE_ID_BYTES * 2} hex digits`);
  }
  return Buffer.from(id, 'hex');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The saved state, or undefined when there is no file. */
export async function loadDhtState(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<DhtState | undefined> {
  throwIfAborted(opts.signal);
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      // One byte past the bound tells an oversized file from one exactly at it.
      const buf = Buffer.alloc(MAX_DHT_STATE_BYTES + 1);
      let got = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
        if (bytesRead === 0) break;
        got += bytesRead;
        if (got === buf.length) break;
      }
      if (got > MAX_DHT_STATE_BYTES) {
        throw new DhtStateError(`DHT state ${path} is larger than ${MAX_DHT_STATE_BYTES} bytes`);
      }
      text = buf.toString('utf8', 0, got);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof DhtStateError) throw e;
    throw new DhtStateError(`cannot read DHT state ${path}`, { cause: e });
  }
  throwIfAborted(opts.signal);
  try {
    return decodeDhtState(text);
  } catch (e) {
    throw new DhtStateError(`DHT state ${path} ignored: ${(e as Error).message}`, { cause: e });
  }
}

/** Replaces the file atomically; its directory is created when missing. */
export async function saveDhtState(
  path: string,
  state: DhtState,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  throwIfAborted(opts.signal);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(encodeDhtState(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    throwIfAborted(opts.signal);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    if ((e as { code?: string }).code === 'ERR_ABORTED') throw e;
    throw new DhtStateError(`cannot write DHT state ${path}`, { cause: e });
  }
}
