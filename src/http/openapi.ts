/**
 * GET /openapi.json: the OpenAPI 3.1 description of every route of the service.
 *
 * Written by hand next to the routes, so it says what they do rather than what a generator could
 * infer. test/e2e/openapi.test.ts keeps it honest: it calls every documented operation on a real
 * service, checks each status, content type, required header and JSON body against this document,
 * and checks that every route label of server.ts is documented here.
 */
import type { ServerResponse } from 'node:http';

/** The service's version; must equal package.json's (a unit test checks). */
export const SERVICE_VERSION = '0.1.0';

// --- The subset of OpenAPI 3.1 this document uses ---------------------------------------------

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';
type Extensions = { readonly [key: `x-${string}`]: unknown };

/** A JSON Schema 2020-12 object, as OpenAPI 3.1 embeds it (`$ref` may sit beside other keywords). */
export interface Schema {
  readonly $ref?: string;
  readonly type?: JsonType | readonly JsonType[];
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | Schema;
  readonly items?: Schema;
  readonly prefixItems?: readonly Schema[];
  readonly enum?: readonly (string | number | boolean | null)[];
  readonly const?: string | number | boolean | null;
  readonly anyOf?: readonly Schema[];
  readonly oneOf?: readonly Schema[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly format?: string;
  readonly contentEncoding?: string;
  readonly contentMediaType?: string;
  readonly examples?: readonly unknown[];
}

export interface Reference {
  readonly $ref: string;
}

export interface Parameter {
  readonly name: string;
  readonly in: 'query' | 'header' | 'path' | 'cookie';
  readonly description: string;
  readonly required?: boolean;
  readonly schema: Schema;
}

export interface Header {
  readonly description: string;
  readonly required?: boolean;
  readonly schema: Schema;
}

export interface Encoding {
  readonly contentType?: string;
}

export type MediaType = {
  readonly schema?: Schema;
  readonly encoding?: Readonly<Record<string, Encoding>>;
} & Extensions;

export type Response = {
  readonly description: string;
  readonly headers?: Readonly<Record<string, Header | Reference>>;
  readonly content?: Readonly<Record<string, MediaType>>;
} & Extensions;

export interface RequestBody {
  readonly description: string;
  readonly required: boolean;
  readonly content: Readonly<Record<string, MediaType>>;
}

export type SecurityRequirement = Readonly<Record<string, readonly string[]>>;

export interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly parameters?: readonly (Parameter | Reference)[];
  readonly requestBody?: RequestBody;
  readonly responses: Readonly<Record<string, Response | Reference>>;
  readonly security?: readonly SecurityRequirement[];
}

export interface PathItem {
  readonly description?: string;
  readonly get?: Operation;
  readonly head?: Operation;
  readonly post?: Operation;
  readonly delete?: Operation;
}

export type SecurityScheme =
  | { readonly type: 'http'; readonly scheme: string; readonly description: string }
  | {
      readonly type: 'apiKey';
      readonly in: 'query' | 'header' | 'cookie';
      readonly name: string;
      readonly description: string;
    };

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: {
    readonly title: string;
    readonly version: string;
    readonly summary: string;
    readonly description: string;
    readonly license: { readonly name: string; readonly identifier: string };
  };
  readonly tags: readonly { readonly name: string; readonly description: string }[];
  readonly paths: Readonly<Record<string, PathItem>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, Schema>>;
    readonly parameters: Readonly<Record<string, Parameter>>;
    readonly headers: Readonly<Record<string, Header>>;
    readonly responses: Readonly<Record<string, Response>>;
    readonly securitySchemes: Readonly<Record<string, SecurityScheme>>;
  };
  readonly security: readonly SecurityRequirement[];
}

// --- Building blocks -----------------------------------------------------------------------------

const schema = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string): Reference => ({ $ref: `#/components/parameters/${name}` });
const header = (name: string): Reference => ({ $ref: `#/components/headers/${name}` });
const response = (name: string): Reference => ({ $ref: `#/components/responses/${name}` });

const INTEGER: Schema = { type: 'integer', minimum: 0 };
const STRING: Schema = { type: 'string' };
const BOOLEAN: Schema = { type: 'boolean' };
const TEXT_LINE: MediaType = { schema: schema('TextLine') };

/** An object whose keys are all listed; `optional` keys may be left out. */
function object(
  properties: Readonly<Record<string, Schema>>,
  o: { readonly optional?: readonly string[]; readonly description?: string } = {},
): Schema {
  return {
    type: 'object',
    ...(o.description === undefined ? {} : { description: o.description }),
    properties,
    required: Object.keys(properties).filter((k) => !(o.optional ?? []).includes(k)),
    additionalProperties: false,
  };
}

function nullable(s: Schema): Schema {
  return { anyOf: [s, { type: 'null' }] };
}

function text(description: string): Response {
  return { description, content: { 'text/plain': TEXT_LINE } };
}

/** Responses in status order, so the served document reads top to bottom. */
function responses(r: Readonly<Record<string, Response | Reference>>): Record<string, Response | Reference> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
}

/** What the access-control step may answer before any route runs (see access-control.ts). */
const ADMISSION = {
  '421': response('MisdirectedRequest'),
  '429': response('TooManyRequests'),
  '500': response('InternalError'),
};
/** ADMISSION plus the refusals of a route that needs credentials under -authToken. */
const GUARDED = { ...ADMISSION, '401': response('Unauthorized'), '403': response('Forbidden') };
/** GUARDED plus what every route naming a torrent may answer. */
const TORRENT = { ...GUARDED, '400': response('BadRequest'), '503': response('Unavailable') };

/** GET and HEAD of one route: HEAD sends the same status and headers, without a body. */
function readOperations(id: string, op: Omit<Operation, 'operationId'>): Pick<PathItem, 'get' | 'head'> {
  return {
    get: { ...op, operationId: `get${id}` },
    head: { ...op, operationId: `head${id}`, summary: `${op.summary} (headers only)` },
  };
}

const TORRENT_PARAMS = [param('ih'), param('magnet')];
const SIGNED_URL_PARAMS = [param('exp'), param('sig')];
const CONDITIONAL_PARAMS = [
  param('Range'),
  param('If-Range'),
  param('If-None-Match'),
  param('If-Match'),
  param('getcontentFeatures.dlna.org'),
  param('transferMode.dlna.org'),
];

/** Public paths: no credentials, even under -authToken (isPublicPath in access-control.ts). */
const PUBLIC: readonly SecurityRequirement[] = [];
/** State-changing requests: the cookie alone is not enough, it needs the CSRF header too. */
const CHANGING: readonly SecurityRequirement[] = [{ bearerAuth: [] }, { cookieSession: [], csrfHeader: [] }];
/** /data in both forms also takes a signed URL. */
const DATA_SECURITY: readonly SecurityRequirement[] = [
  { bearerAuth: [] },
  { cookieSession: [] },
  { signedUrl: [] },
];

function dataHeaders(required: boolean): Record<string, Reference> {
  const h = {
    ETag: header('ETag'),
    'Accept-Ranges': header('Accept-Ranges'),
    'Cache-Control': header('Cache-Control-Immutable'),
    'Content-Disposition': header('Content-Disposition-Inline'),
  };
  const dlna = {
    'contentFeatures.dlna.org': header('contentFeatures.dlna.org'),
    'transferMode.dlna.org': header('transferMode.dlna.org'),
  };
  const optional = Object.fromEntries(Object.entries(h).map(([k]) => [k, header(`${k}-Optional`)]));
  return { ...(required ? h : optional), ...dlna };
}

const FILE_BYTES: MediaType = {
  schema: {
    description:
      'The bytes of the file, or of the whole torrent (every file concatenated, padding included). ' +
      'Content-Type comes from the file extension (never from the data), application/octet-stream ' +
      'when unknown.',
  },
};

/** The responses of /data and of the path form when it serves bytes. */
function dataResponses(o: { readonly notFound: boolean; readonly listing: boolean }) {
  const bytes200: Response = o.listing
    ? {
        description:
          'The file (all of it), or, for a directory of a multi-file torrent (a path ending in /), its ' +
          'listing: JSON when Accept ranks application/json above text/html, else its index.html when ' +
          'it has one, else an HTML page. Listings carry Vary: Accept and none of the validators.',
        headers: { ...dataHeaders(false), 'Content-Length': header('Content-Length') },
        content: {
          'application/json': { schema: schema('DirectoryListing') },
          'text/html': { schema: { type: 'string', description: 'The listing page (or index.html).' } },
          '*/*': FILE_BYTES,
        },
      }
    : {
        description:
          'All of it: no Range, a malformed Range (ignored), an If-Range that does not match, or more ' +
          'than 100 ranges.',
        headers: { ...dataHeaders(true), 'Content-Length': header('Content-Length') },
        content: { '*/*': FILE_BYTES },
      };
  return responses({
    ...TORRENT,
    '200': bytes200,
    '206': {
      description:
        'The ranges asked for. One range: its bytes, with Content-Range. Several: ' +
        'multipart/byteranges in request order (overlapping and adjacent ranges coalesced), each part ' +
        'with its own Content-Type and Content-Range.',
      headers: {
        ...dataHeaders(true),
        'Content-Length': header('Content-Length'),
        'Content-Range': header('Content-Range-Optional'),
      },
      content: {
        '*/*': { schema: { description: 'The bytes of the one range.' } },
        'multipart/byteranges': {
          schema: { type: 'string', description: 'One part per range, boundary in the Content-Type.' },
        },
      },
    },
    '304': {
      description: 'If-None-Match names the ETag (or is *).',
      headers: dataHeaders(true),
    },
    ...(o.listing
      ? {
          '301': {
            description:
              'A directory named without its trailing slash (or with an encoded slash) is redirected to its ' +
              'slash form, by a relative Location that keeps the query.',
            headers: { Location: header('Location') },
            content: { 'text/plain': TEXT_LINE },
          },
        }
      : {}),
    ...(o.notFound ? { '404': response('FileNotFound') } : {}),
    '412': {
      description: 'If-Match does not name the ETag (an unreadable If-Match never matches).',
      headers: dataHeaders(true),
    },
    '416': {
      description: 'No range of the Range header lies inside the representation.',
      headers: { ...dataHeaders(true), 'Content-Range': header('Content-Range-Unsatisfied') },
    },
  });
}

const DATA_DESCRIPTION =
  'RFC 9110 semantics: single, open-ended (500-), suffix (-500) and multiple ranges, a strong ETag ' +
  'honoured by If-Range, If-None-Match and If-Match, Cache-Control immutable, Content-Disposition ' +
  'inline with the base name (or `filename`). Every header is computed from the info alone, so HEAD ' +
  'answers before any piece has arrived; GET waits for the info and then streams hash-verified bytes ' +
  'as pieces arrive. The first request naming a torrent adds it to the client.';

// --- JSON bodies ---------------------------------------------------------------------------------

const PIECE_STATE_PROPERTIES: Readonly<Record<string, Schema>> = {
  Priority: {
    type: 'integer',
    minimum: 0,
    maximum: 5,
    description: 'anacrolix/torrent piece priority: 0 none, 1 normal, 2 high, 3 readahead, 4 next, 5 now.',
  },
  Complete: BOOLEAN,
  Ok: { const: true, description: "Always true: completion comes from the service's own index." },
  Err: { type: 'null' },
  Checking: BOOLEAN,
  Hashing: BOOLEAN,
  QueuedForHash: { const: false },
  Marking: { const: false },
  Partial: BOOLEAN,
  MissingPieceLayerHash: { const: false },
};

const SCHEMAS: Readonly<Record<string, Schema>> = {
  TextLine: {
    type: 'string',
    description: 'One line of plain text (an error, or the answer of a route that answers text).',
  },
  InfoHash: {
    type: 'string',
    pattern: '^[0-9a-f]{40}$',
    description: 'A v1 infohash, 40 lower-case hex characters.',
  },
  PieceState: object(PIECE_STATE_PROPERTIES, {
    description: "A piece's state with the original's keys (anacrolix/torrent's PieceState).",
  }),
  FileStateItem: object(
    { Bytes: { ...INTEGER, description: 'Bytes of the file inside this piece.' }, ...PIECE_STATE_PROPERTIES },
    { description: 'One piece overlapping the file: `Bytes` first, then the PieceState keys.' },
  ),
  FileState: {
    type: 'array',
    items: schema('FileStateItem'),
    description:
      'One item per piece overlapping the file, in piece order; [] for a zero-length file (the original ' +
      'sent null).',
  },
  PieceChangedFrame: object(
    { PieceChanged: { ...INTEGER, description: 'The piece index.' }, State: schema('PieceState') },
    { optional: ['State'], description: 'A piece changed; `State` only with `state=1`.' },
  ),
  SnapshotFrame: object(
    { Snapshot: { type: 'array', items: schema('PieceState'), description: 'Every piece, in order.' } },
    { description: 'Sent first with `state=1`, once the info is known.' },
  ),
  EventFrame: {
    oneOf: [schema('PieceChangedFrame'), schema('SnapshotFrame')],
    description:
      'One /events message: a websocket text frame, or the `data:` line of one server-sent event. ' +
      'While a client is slow, changes are coalesced to the latest state per piece.',
  },
  FileEntry: object(
    {
      index: { ...INTEGER, description: "Position in the info's file list (padding files count)." },
      path: { ...STRING, description: 'Display path: the path inside the torrent joined with /.' },
      length: INTEGER,
      offset: { ...INTEGER, description: "Offset of the file's first byte in the torrent." },
      firstPiece: nullable({ ...INTEGER, description: 'Null for a zero-length file.' }),
      lastPiece: nullable(INTEGER),
      contentType: { ...STRING, description: 'What /data sends as Content-Type.' },
      padding: { ...BOOLEAN, description: 'A BEP 47 padding file (listed only with padding=1).' },
      url: nullable({
        ...STRING,
        format: 'uri',
        description:
          'Absolute /data?ih=…&path=… URL (signed under -authToken); null when an earlier file has the same ' +
          'display path.',
      }),
      pathUrl: nullable({
        ...STRING,
        format: 'uri',
        description: 'Absolute /data/infohash/<ih>/<path> URL; null also when no path-form URL can name it.',
      }),
    },
    { description: 'One file of /files.' },
  ),
  TorrentFiles: object(
    {
      infoHash: schema('InfoHash'),
      name: STRING,
      totalLength: INTEGER,
      pieceLength: INTEGER,
      pieceCount: INTEGER,
      files: { type: 'array', items: schema('FileEntry') },
    },
    { description: "The file table of /files, in the info's order." },
  ),
  DirectoryListing: object(
    {
      infoHash: schema('InfoHash'),
      name: STRING,
      path: { ...STRING, description: 'The directory: "" for the root, else components each ending in /.' },
      entries: {
        type: 'array',
        items: { oneOf: [schema('DirectoryListingDirectory'), schema('DirectoryListingFile')] },
        description: 'Directories first, then files, each in natural order.',
      },
    },
    { description: 'A directory of a multi-file torrent, as JSON.' },
  ),
  DirectoryListingDirectory: object({
    type: { const: 'directory' },
    name: STRING,
    size: INTEGER,
    files: { ...INTEGER, description: 'Files under it, at any depth.' },
    href: nullable({ ...STRING, description: "Relative to the listing's URL; null when no URL reaches it." }),
    url: nullable({ ...STRING, format: 'uri' }),
  }),
  DirectoryListingFile: object({
    type: { const: 'file' },
    name: STRING,
    size: INTEGER,
    contentType: STRING,
    index: INTEGER,
    path: STRING,
    href: { ...STRING, description: "Relative to the listing's URL." },
    url: { ...STRING, format: 'uri', description: 'Absolute /data URL (signed under -authToken).' },
  }),
  MetainfoJson: object(
    {
      info: {
        ...STRING,
        contentEncoding: 'base64',
        contentMediaType: 'application/x-bittorrent',
        description: 'The exact bencoded info dictionary, base64.',
      },
      announce: { ...STRING, description: 'The first tracker.' },
      announceList: { type: 'array', items: { type: 'array', items: STRING }, description: 'Tracker tiers.' },
      creationDate: { type: 'integer', description: 'Unix seconds.' },
      comment: STRING,
      createdBy: STRING,
      urlList: { type: 'array', items: STRING, description: 'Web seeds (BEP 19).' },
    },
    {
      optional: ['announce', 'announceList', 'creationDate', 'comment', 'createdBy', 'urlList'],
      description: "The original's JSON shape of a metainfo; keys are left out when empty.",
    },
  ),
  StoreStats: object(
    {
      capacity: { ...INTEGER, description: 'Bytes the store may hold; absent when unlimited.' },
      bytes: INTEGER,
      pieces: INTEGER,
      pinnedBytes: INTEGER,
      evictions: INTEGER,
      hits: INTEGER,
      misses: INTEGER,
    },
    { optional: ['capacity'], description: 'The piece store.' },
  ),
  CachedTorrent: object({
    infoHash: schema('InfoHash'),
    name: STRING,
    totalLength: INTEGER,
    pieceCount: INTEGER,
    piecesCached: INTEGER,
    inClient: BOOLEAN,
  }),
  Cache: object(
    {
      capacity: INTEGER,
      bytes: INTEGER,
      pieces: INTEGER,
      pinnedBytes: INTEGER,
      evictions: INTEGER,
      hits: INTEGER,
      misses: INTEGER,
      hitRatio: nullable({ type: 'number', minimum: 0, maximum: 1, description: 'Null before any lookup.' }),
      torrents: {
        type: 'array',
        items: schema('CachedTorrent'),
        description: 'Torrents whose metainfo is stored (at most 500).',
      },
    },
    { optional: ['capacity'], description: 'The StoreStats fields, the hit ratio and the cached torrents.' },
  ),
  ClientTotals: object({
    bytesDownloaded: INTEGER,
    bytesUploaded: INTEGER,
    bytesWasted: INTEGER,
    piecesVerified: INTEGER,
    piecesFailed: INTEGER,
  }),
  DhtStats: object({
    nodes: INTEGER,
    id: STRING,
    port: INTEGER,
    tracked: INTEGER,
    announced: INTEGER,
    lookups: INTEGER,
    announcesReceived: INTEGER,
    nodeHints: { ...INTEGER, description: 'Nodes peers told us of in PORT messages (BEP 5), pinged.' },
    guard: object({
      foreign: INTEGER,
      dropped: {
        type: 'object',
        additionalProperties: INTEGER,
        description: 'Datagrams dropped, by reason.',
      },
      contactsRemoved: INTEGER,
    }),
  }),
  TrackerStatus: object(
    {
      url: STRING,
      tier: INTEGER,
      state: { enum: ['idle', 'announcing', 'scheduled', 'standby', 'unusable'] },
      lastAnnounce: { ...INTEGER, description: 'Wall-clock ms since the epoch.' },
      nextAnnounce: INTEGER,
      lastError: STRING,
      lastPeerCount: INTEGER,
      seeders: INTEGER,
      leechers: INTEGER,
    },
    {
      optional: [
        'state',
        'lastAnnounce',
        'nextAnnounce',
        'lastError',
        'lastPeerCount',
        'seeders',
        'leechers',
      ],
    },
  ),
  WebSeedSnapshot: object(
    {
      url: STRING,
      disabled: BOOLEAN,
      backingOff: BOOLEAN,
      bytes: INTEGER,
      requests: INTEGER,
      failures: INTEGER,
      lastError: STRING,
    },
    { optional: ['lastError'] },
  ),
  PeerSnapshot: object({
    address: STRING,
    source: { enum: ['tracker', 'incoming', 'magnet', 'manual', 'dht', 'pex', 'lsd'] },
    client: STRING,
    transport: { enum: ['tcp', 'utp'] },
    encrypted: BOOLEAN,
    amChoking: BOOLEAN,
    amInterested: BOOLEAN,
    peerChoking: BOOLEAN,
    peerInterested: BOOLEAN,
    piecesHave: INTEGER,
    requestsInFlight: INTEGER,
    downloadRate: { type: 'number', description: 'Bytes per second.' },
    uploadRate: { type: 'number', description: 'Bytes per second.' },
    usefulBytes: INTEGER,
    connectedMs: { type: 'number' },
  }),
  TorrentStats: object({
    state: { enum: ['awaiting-info', 'live', 'dropped'] },
    bytesDownloaded: INTEGER,
    bytesWasted: INTEGER,
    bytesUploaded: INTEGER,
    piecesVerified: INTEGER,
    piecesFailed: INTEGER,
    piecesComplete: INTEGER,
    peers: INTEGER,
    knownAddresses: INTEGER,
    readers: INTEGER,
  }),
  TorrentSnapshot: object(
    {
      infoHash: schema('InfoHash'),
      name: { ...STRING, description: 'Absent while neither the info nor a magnet dn gave one.' },
      state: { enum: ['awaiting-info', 'live', 'dropped'] },
      totalLength: INTEGER,
      pieceLength: INTEGER,
      pieceCount: INTEGER,
      piecesComplete: INTEGER,
      pieceRuns: {
        ...STRING,
        description: 'Piece states in the original\'s run notation, e.g. "12C 1!P 7R 980".',
      },
      readers: {
        type: 'array',
        items: object({
          start: INTEGER,
          end: INTEGER,
          position: INTEGER,
          firstPiece: INTEGER,
          endPiece: INTEGER,
        }),
      },
      trackers: { type: 'array', items: schema('TrackerStatus') },
      webSeeds: { type: 'array', items: schema('WebSeedSnapshot') },
      peers: { type: 'array', items: schema('PeerSnapshot') },
      stats: schema('TorrentStats'),
    },
    {
      optional: ['name', 'totalLength', 'pieceLength', 'pieceCount', 'piecesComplete', 'pieceRuns'],
      description: 'One torrent; the info-derived keys appear once the info is known.',
    },
  ),
  PortForwarding: object(
    {
      state: { enum: ['searching', 'ready', 'closed'] },
      port: INTEGER,
      gateways: {
        type: 'array',
        items: object(
          {
            kind: { enum: ['upnp', 'natpmp'] },
            location: { ...STRING, description: 'UPnP: the device description URL; NAT-PMP: host:port.' },
            externalIp: STRING,
            mappings: {
              type: 'array',
              items: object({
                protocol: { enum: ['TCP', 'UDP'] },
                externalPort: INTEGER,
                internalHost: STRING,
                internalPort: INTEGER,
                leaseSeconds: { ...INTEGER, description: '0: permanent.' },
              }),
            },
            error: { ...STRING, description: 'Why the last attempt with this gateway failed.' },
          },
          { optional: ['externalIp', 'error'] },
        ),
      },
    },
    { description: '-uPnPPortForwarding: the gateways found and what each forwards to us.' },
  ),
  Status: object(
    {
      httpAddress: STRING,
      peerPort: INTEGER,
      peerId: { ...STRING, description: 'The 20-byte peer id as latin1 text.' },
      dht: nullable(schema('DhtStats')),
      portForwarding: nullable(schema('PortForwarding')),
      totals: schema('ClientTotals'),
      peers: INTEGER,
      store: schema('StoreStats'),
      torrents: { type: 'array', items: schema('TorrentSnapshot'), description: 'By infohash.' },
    },
    { description: 'The whole service, the same information as the text form.' },
  ),
  DebugIndex: object({ pages: { type: 'array', items: STRING } }),
  DebugPage: { type: 'object', description: "Node's own figures; the shape is Node's." },
  UploadForm: {
    type: 'object',
    properties: {
      name: { ...STRING, description: "The torrent's name." },
      files: {
        type: 'array',
        items: { type: 'string', contentMediaType: 'application/octet-stream' },
        description:
          "One part per file; the part's file name, directories included, is the file's path in the torrent.",
      },
      'strip-top-directory': {
        ...STRING,
        description: 'Present (any value): drop the first component of every path that has several.',
      },
    },
    required: ['name', 'files'],
  },
  LoginForm: {
    type: 'object',
    properties: {
      token: { ...STRING, description: 'The -authToken.' },
      next: { ...STRING, description: 'A path on this service to go to; anything else means the dashboard.' },
    },
    required: ['token'],
  },
};

// --- Reusable parts ------------------------------------------------------------------------------

const PARAMETERS: Readonly<Record<string, Parameter>> = {
  ih: {
    name: 'ih',
    in: 'query',
    description:
      "The torrent's infohash, 40 hex characters (either case). One of `ih` and `magnet` is required; a " +
      'non-empty `magnet` wins.',
    schema: { type: 'string', pattern: '^[0-9a-fA-F]{40}$' },
  },
  magnet: {
    name: 'magnet',
    in: 'query',
    description:
      'A magnet URI (percent-encoded). Its trackers (tr), web seeds (ws), peers (x.pe) and name (dn) are ' +
      'added to the torrent.',
    schema: { type: 'string', pattern: '^magnet:' },
  },
  nowait: {
    name: 'nowait',
    in: 'query',
    description:
      "Truthy (1, t, T, true, TRUE, True, as Go's ParseBool): answer 202 at once while the info is unknown " +
      'instead of waiting for it. Any other value is false.',
    schema: STRING,
  },
  dataPath: {
    name: 'path',
    in: 'query',
    description:
      "Display path of the file: its path inside the torrent joined with /, without the torrent's name " +
      '(for a single-file torrent: the name). Absent: the whole torrent.',
    schema: STRING,
  },
  filename: {
    name: 'filename',
    in: 'query',
    description: "The file name for Content-Disposition, instead of the file's base name.",
    schema: STRING,
  },
  exp: {
    name: 'exp',
    in: 'query',
    description:
      'Signed URLs (under -authToken): expiry, Unix seconds. Covered by `sig`; handed out by /files, ' +
      '/playlist.m3u8, listings and the dashboard.',
    schema: { type: 'integer' },
  },
  sig: {
    name: 'sig',
    in: 'query',
    description:
      'Signed URLs: base64url HMAC-SHA256 over the path and every other query parameter. A wrong or ' +
      'expired signature is 403 (unless other credentials pass).',
    schema: STRING,
  },
  Range: {
    name: 'Range',
    in: 'header',
    description: 'bytes=… with one or more ranges; a malformed value is ignored.',
    schema: { ...STRING, examples: ['bytes=0-1023', 'bytes=500-', 'bytes=-500', 'bytes=0-0,10-19'] },
  },
  'If-Range': {
    name: 'If-Range',
    in: 'header',
    description:
      'Honour Range only when this is the current ETag (dates never match: there is no Last-Modified).',
    schema: STRING,
  },
  'If-None-Match': {
    name: 'If-None-Match',
    in: 'header',
    description: 'ETags (or *); a match is 304.',
    schema: STRING,
  },
  'If-Match': {
    name: 'If-Match',
    in: 'header',
    description: 'ETags (or *); no match is 412.',
    schema: STRING,
  },
  'getcontentFeatures.dlna.org': {
    name: 'getcontentFeatures.dlna.org',
    in: 'header',
    description: '`1` (DLNA renderers, e.g. TVs): the response carries contentFeatures.dlna.org.',
    schema: { enum: ['1'] },
  },
  'transferMode.dlna.org': {
    name: 'transferMode.dlna.org',
    in: 'header',
    description: 'Streaming, Interactive or Background (DLNA): echoed in the response.',
    schema: STRING,
  },
  pathIh: {
    name: 'ih',
    in: 'path',
    required: true,
    description: "The torrent's infohash, 40 hex characters.",
    schema: { type: 'string', pattern: '^[0-9a-fA-F]{40}$' },
  },
  pathPath: {
    name: 'path',
    in: 'path',
    required: true,
    description:
      'Display path of a file, or of a directory followed by /. It MAY contain / (this parameter spans ' +
      'several URL segments, each percent-encoded on its own). A path whose segments are . or .. cannot ' +
      'be named here (URL parsers resolve them): use /data?path=.',
    schema: STRING,
  },
};

const HEADERS: Readonly<Record<string, Header>> = {
  ETag: {
    description: 'Strong: "<ih>-<file index>" for a file, "<ih>" for the whole torrent. Never changes.',
    required: true,
    schema: STRING,
  },
  'ETag-Optional': { description: 'As ETag; sent with file bytes.', schema: STRING },
  'Accept-Ranges': { description: 'Always `bytes`.', required: true, schema: { const: 'bytes' } },
  'Accept-Ranges-Optional': { description: '`bytes`; sent with file bytes.', schema: { const: 'bytes' } },
  'Cache-Control-Immutable': {
    description: '`public, max-age=31536000, immutable`: the bytes of an infohash never change.',
    required: true,
    schema: STRING,
  },
  'Cache-Control-Optional': {
    description: 'Immutable with file bytes; no-cache for a listing page; no-store for JSON.',
    schema: STRING,
  },
  'Content-Disposition-Inline': {
    description: "RFC 6266: inline, an ASCII filename and filename*=UTF-8''… for other names.",
    required: true,
    schema: STRING,
  },
  'Content-Disposition-Optional': { description: 'As with /data; sent with file bytes.', schema: STRING },
  'contentFeatures.dlna.org': {
    description:
      'Only for getcontentFeatures.dlna.org: 1. `DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=0170…`: byte ' +
      'seeks work, so TVs show a seek bar.',
    schema: STRING,
  },
  'transferMode.dlna.org': { description: 'The request’s transferMode.dlna.org, echoed.', schema: STRING },
  'Content-Disposition-Attachment': {
    description: 'attachment, with the file name the body should be saved as.',
    required: true,
    schema: STRING,
  },
  'Content-Disposition-Torrent': {
    description: 'With the .torrent (not with the JSON form): attachment, named after the torrent.',
    schema: STRING,
  },
  'Content-Length': { description: 'Always exact.', required: true, schema: INTEGER },
  'Content-Range-Optional': {
    description: '`bytes <first>-<last>/<size>` for a single range (multipart parts carry their own).',
    schema: STRING,
  },
  'Content-Range-Unsatisfied': { description: '`bytes */<size>`.', required: true, schema: STRING },
  Location: { description: 'Where to go.', required: true, schema: STRING },
  'Retry-After': { description: 'Seconds.', required: true, schema: INTEGER },
  'WWW-Authenticate': { description: 'Bearer challenge.', required: true, schema: STRING },
  'Set-Cookie-Session': {
    description: 'confluence_session=…; Path=/; HttpOnly; SameSite=Strict (Secure over https); 7 days.',
    required: true,
    schema: STRING,
  },
  'Set-Cookie-Cleared': {
    description: 'The session cookie with Max-Age=0.',
    required: true,
    schema: STRING,
  },
  'X-Infohash': { description: "The new torrent's infohash.", required: true, schema: schema('InfoHash') },
};

const RESPONSES: Readonly<Record<string, Response>> = {
  BadRequest: text(
    'A bad or missing infohash or magnet (`error determining requested infohash: …`), a bad body, a bad ' +
      'path encoding, or another parameter that does not parse.',
  ),
  FileNotFound: text('No file of the torrent has that display path (`file not found`).'),
  PayloadTooLarge: {
    description: 'The body is larger than the route accepts; the connection is closed.',
    content: { 'text/plain': TEXT_LINE },
  },
  Unauthorized: {
    description:
      'Under -authToken: no credentials, or a wrong Bearer token. The dashboard shows its login form.',
    headers: { 'WWW-Authenticate': header('WWW-Authenticate') },
    content: { 'text/plain': TEXT_LINE },
  },
  Forbidden: text(
    'A state-changing request or websocket from an origin that is neither this host nor a -cors origin; the ' +
      'login cookie without `X-Confluence-CSRF: 1` on a state-changing request; an expired or wrong URL ' +
      'signature; a refused CORS preflight.',
  ),
  MisdirectedRequest: text(
    'The Host header is not allowed: the service listens on loopback (or was given -allowHost) and the ' +
      'name is not one of its own.',
  ),
  TooManyRequests: {
    description:
      'More than -maxRequestsPerClient requests in flight from this client, or too many wrong tokens.',
    headers: { 'Retry-After': header('Retry-After') },
    content: { 'text/plain': TEXT_LINE },
  },
  InfoNotReady: {
    description: '`nowait` was given and the info is not known yet (`info not ready`).',
    content: { 'text/plain': TEXT_LINE },
  },
  Unavailable: text('The service is shutting down, or the torrent was dropped while the request waited.'),
  InternalError: text('A bug (`internal error`); the details are in the log.'),
};

const SECURITY_SCHEMES: Readonly<Record<string, SecurityScheme>> = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description:
      'Only with -authToken (else every route is open): `Authorization: Bearer <token>`. Wrong tokens are ' +
      'throttled per client.',
  },
  cookieSession: {
    type: 'apiKey',
    in: 'cookie',
    name: 'confluence_session',
    description:
      'Only with -authToken: the session cookie POST /login sets (7 days). State-changing requests also ' +
      'need csrfHeader; a websocket needs an Origin header.',
  },
  csrfHeader: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Confluence-CSRF',
    description: 'Must be `1`. Goes with cookieSession on state-changing requests.',
  },
  signedUrl: {
    type: 'apiKey',
    in: 'query',
    name: 'sig',
    description:
      'Only with -authToken, only on /data (both forms): a capability URL carrying `exp` and `sig` (see ' +
      'those parameters), for players that cannot send credentials. Lifetime -signedUrlTtl.',
  },
};

// --- Routes --------------------------------------------------------------------------------------

const TORRENT_ROUTE_NOTE =
  'The torrent is added on first use and stays while any request uses it, then -torrentGrace longer.';

const PATHS: Readonly<Record<string, PathItem>> = {
  '/data': readOperations('Data', {
    tags: ['data'],
    summary: 'A file of a torrent, or the whole torrent',
    description: DATA_DESCRIPTION,
    parameters: [
      ...TORRENT_PARAMS,
      param('dataPath'),
      param('filename'),
      ...SIGNED_URL_PARAMS,
      ...CONDITIONAL_PARAMS,
    ],
    responses: dataResponses({ notFound: true, listing: false }),
    security: DATA_SECURITY,
  }),
  '/data/infohash/{ih}': readOperations('DataWholeTorrent', {
    tags: ['data'],
    summary: 'The whole torrent, path form',
    description: `${DATA_DESCRIPTION} \`/data/infohash\` and \`/data/infohash/\` alone are 400.`,
    parameters: [param('pathIh'), param('filename'), ...SIGNED_URL_PARAMS, ...CONDITIONAL_PARAMS],
    responses: dataResponses({ notFound: false, listing: false }),
    security: DATA_SECURITY,
  }),
  '/data/infohash/{ih}/': readOperations('DataRoot', {
    tags: ['data'],
    summary: 'The root directory of a multi-file torrent (the whole torrent for a single-file one)',
    description: `A listing, as a static web server gives one. ${DATA_DESCRIPTION}`,
    parameters: [param('pathIh'), param('filename'), ...SIGNED_URL_PARAMS, ...CONDITIONAL_PARAMS],
    responses: dataResponses({ notFound: false, listing: true }),
    security: DATA_SECURITY,
  }),
  '/data/infohash/{ih}/{path}': readOperations('DataPath', {
    tags: ['data'],
    summary: 'A file or directory of a torrent, path form',
    description:
      'Like /data?ih=…&path=…, with the path in the URL so relative links between files work; a path ' +
      `ending in / lists a directory, and a directory without it is redirected. ${DATA_DESCRIPTION}`,
    parameters: [
      param('pathIh'),
      param('pathPath'),
      param('filename'),
      ...SIGNED_URL_PARAMS,
      ...CONDITIONAL_PARAMS,
    ],
    responses: dataResponses({ notFound: true, listing: true }),
    security: DATA_SECURITY,
  }),
  '/info': readOperations('Info', {
    tags: ['torrents'],
    summary: 'The exact bencoded info dictionary (hashes to the infohash)',
    description: `Waits for the info unless \`nowait\`. ${TORRENT_ROUTE_NOTE}`,
    parameters: [...TORRENT_PARAMS, param('nowait')],
    responses: responses({
      ...TORRENT,
      '200': { description: 'The info dict.', content: { 'application/octet-stream': {} } },
      '202': response('InfoNotReady'),
    }),
  }),
  '/metainfo': {
    ...readOperations('Metainfo', {
      tags: ['torrents'],
      summary: "The torrent's metainfo (.torrent) or its JSON form",
      description:
        'A .torrent with the info, trackers and web seeds; with Accept ranking application/json at least as ' +
        `high as application/x-bittorrent, the original's JSON shape. ${TORRENT_ROUTE_NOTE}`,
      parameters: [...TORRENT_PARAMS, param('nowait')],
      responses: responses({
        ...TORRENT,
        '200': {
          description: 'The metainfo.',
          headers: { 'Content-Disposition': header('Content-Disposition-Torrent') },
          content: {
            'application/x-bittorrent': {},
            'application/json': { schema: schema('MetainfoJson') },
          },
        },
        '202': response('InfoNotReady'),
      }),
    }),
    post: {
      operationId: 'postMetainfo',
      tags: ['torrents'],
      summary: 'Add a torrent, or merge trackers, web seeds and info into one',
      description:
        "The body (or the .torrent at `url`) is a bencoded metainfo. The infohash is its info's; a body " +
        'without info needs `ih` or `magnet` (e.g. to add trackers); both present and different is 400.',
      parameters: [
        ...TORRENT_PARAMS,
        {
          name: 'url',
          in: 'query',
          description:
            'Fetch the .torrent from this http(s) URL instead of reading the body (-allowMetainfoUrl; private ' +
            'addresses only with -allowPrivateMetainfoUrl; at most 5 redirects, 30 s, 17 MiB).',
          schema: { type: 'string', format: 'uri', examples: ['https://example.org/a.torrent'] },
        },
      ],
      requestBody: {
        description: 'A .torrent, at most 17 MiB. Not read when `url` is given.',
        required: false,
        content: { 'application/x-bittorrent': {} },
      },
      responses: responses({
        ...TORRENT,
        '200': text('The infohash of the torrent.'),
        '403': text(
          'Any refusal of the access step (see Forbidden), or `url` while -allowMetainfoUrl is off, or a ' +
            'URL that leads to an address the service will not fetch from.',
        ),
        '413': response('PayloadTooLarge'),
        '502': text(
          '`url` did not give a .torrent (no such host, connection error, status, size, redirects).',
        ),
        '504': text('`url` gave no .torrent within 30 s.'),
      }),
      security: CHANGING,
    },
  },
  '/files': readOperations('Files', {
    tags: ['torrents'],
    summary: "The torrent's file table, with /data URLs",
    description: `Waits for the info unless \`nowait\`. ${TORRENT_ROUTE_NOTE}`,
    parameters: [
      ...TORRENT_PARAMS,
      param('nowait'),
      {
        name: 'padding',
        in: 'query',
        description: 'Truthy (as nowait): list BEP 47 padding files too.',
        schema: STRING,
      },
    ],
    responses: responses({
      ...TORRENT,
      '200': {
        description: 'The files.',
        content: { 'application/json': { schema: schema('TorrentFiles') } },
      },
      '202': response('InfoNotReady'),
    }),
  }),
  '/playlist.m3u8': readOperations('Playlist', {
    tags: ['torrents'],
    summary: "An extended M3U of the torrent's audio and video files",
    description:
      'Absolute /data URLs (signed under -authToken) in natural path order; `#EXTM3U` alone when the ' +
      `torrent has no media. Not an HLS playlist. Waits for the info. ${TORRENT_ROUTE_NOTE}`,
    parameters: TORRENT_PARAMS,
    responses: responses({
      ...TORRENT,
      '200': {
        description: 'The playlist.',
        headers: { 'Content-Disposition': header('Content-Disposition-Inline') },
        content: { 'audio/x-mpegurl': { schema: { type: 'string', description: 'UTF-8 extended M3U.' } } },
      },
    }),
  }),
  '/fileState': readOperations('FileState', {
    tags: ['observability'],
    summary: 'The state of every piece of one file',
    description:
      "The original's keys. Gzipped when Accept-Encoding names gzip. Waits for the info (there is no " +
      `\`nowait\` here). ${TORRENT_ROUTE_NOTE}`,
    parameters: [
      ...TORRENT_PARAMS,
      {
        name: 'path',
        in: 'query',
        description: 'Display path of the file. Absent is the empty path, which names no file: 404.',
        schema: STRING,
      },
    ],
    responses: responses({
      ...TORRENT,
      '200': { description: 'The pieces.', content: { 'application/json': { schema: schema('FileState') } } },
      '404': response('FileNotFound'),
    }),
  }),
  '/events': {
    get: {
      operationId: 'getEvents',
      tags: ['observability'],
      summary: 'Piece-state changes as they happen: websocket or server-sent events',
      description:
        'Either a websocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`): text frames, one ' +
        'EventFrame each, as the original sent them; the server pings every 30 s and ignores client ' +
        'messages (at most 4 KiB). Or `Accept: text/event-stream`: one server-sent event per frame, with ' +
        '`: ping` comments every 30 s. The stream starts before the info is known; with `state=1` it ' +
        `starts with a Snapshot frame once it is. HEAD is not served (405). ${TORRENT_ROUTE_NOTE}`,
      parameters: [
        ...TORRENT_PARAMS,
        {
          name: 'state',
          in: 'query',
          description: "Truthy (as nowait): a Snapshot first, and the piece's state in every frame.",
          schema: STRING,
        },
      ],
      responses: responses({
        ...TORRENT,
        '400': text(
          'A bad or missing infohash or magnet, or a plain GET: neither a websocket upgrade nor ' +
            'Accept: text/event-stream.',
        ),
        '101': {
          description: 'Switching to the websocket; every message is one EventFrame as JSON text.',
          'x-websocket-message': schema('EventFrame'),
        },
        '200': {
          description: "Server-sent events; each event's `data:` line is one EventFrame as JSON.",
          content: {
            'text/event-stream': {
              schema: { type: 'string', description: 'data: <EventFrame>\\n\\n, and `: ping` comments.' },
              'x-event-data': schema('EventFrame'),
            },
          },
        },
      }),
    },
  },
  '/upload': {
    post: {
      operationId: 'postUpload',
      tags: ['torrents'],
      summary: 'Make a torrent of uploaded files and seed it',
      description:
        'A v1 multi-file torrent (as the original) of the files, in the order sent; the pieces are stored, ' +
        'so the service serves and seeds it with no peer. Files stream to disk, at most 4 GiB and 10000 ' +
        'files in all.',
      requestBody: {
        description: "The files and the torrent's name.",
        required: true,
        content: {
          'multipart/form-data': {
            schema: schema('UploadForm'),
            encoding: { files: { contentType: 'application/octet-stream' } },
          },
        },
      },
      responses: responses({
        ...GUARDED,
        '200': {
          description: 'The new .torrent.',
          headers: {
            'X-Infohash': header('X-Infohash'),
            'Content-Disposition': header('Content-Disposition-Attachment'),
          },
          content: { 'application/x-bittorrent': {} },
        },
        '400': text(
          'Not multipart/form-data, no `name`, no `files`, a file part without a file name, more than ' +
            '10000 files, or only empty files.',
        ),
        '413': response('PayloadTooLarge'),
      }),
      security: CHANGING,
    },
  },
  '/bep44': readOperations('Bep44', {
    tags: ['dht'],
    summary: 'A BEP 44 item from the DHT',
    description: 'The value of an immutable or mutable (signature-checked) item.',
    parameters: [
      {
        name: 'target',
        in: 'query',
        required: true,
        description:
          "The item's target, hex; at least 40 characters, of which (as in the original) only the first " +
          '40 count.',
        schema: { type: 'string', pattern: '^[0-9a-fA-F]{40,}$' },
      },
      {
        name: 'salt',
        in: 'query',
        description: "A mutable item's salt, as UTF-8.",
        schema: STRING,
      },
    ],
    responses: responses({
      ...GUARDED,
      '200': { description: "The item's value (bencoded).", content: { 'application/octet-stream': {} } },
      '400': text('`target` is not at least 40 hex characters, or the DHT refused the arguments.'),
      '404': text('No node had the item.'),
      '503': text('The DHT is off (-dht=false), not running, or at its limit of lookups.'),
      '504': text("No item within the lookup's time."),
    }),
  }),
  '/torrent': {
    delete: {
      operationId: 'deleteTorrent',
      tags: ['torrents'],
      summary: 'Drop a torrent and delete its pieces and metainfo',
      description: 'Open streams of the torrent end.',
      parameters: TORRENT_PARAMS,
      responses: responses({
        ...TORRENT,
        '200': text('The infohash.'),
        '404': text('The torrent is neither in the client nor cached (`unknown torrent`).'),
      }),
      security: CHANGING,
    },
  },
  '/cache': readOperations('Cache', {
    tags: ['observability'],
    summary: 'The piece store and the torrents it holds',
    responses: responses({
      ...GUARDED,
      '200': { description: 'The cache.', content: { 'application/json': { schema: schema('Cache') } } },
    }),
  }),
  '/health': readOperations('Health', {
    tags: ['observability'],
    summary: 'Ready',
    description: 'Public under -authToken.',
    responses: responses({ ...ADMISSION, '200': text('`ok`.') }),
    security: PUBLIC,
  }),
  '/status': readOperations('Status', {
    tags: ['observability'],
    summary: 'The service and every torrent in it',
    description: 'Readable text, or JSON with `format=json` or `Accept: application/json`.',
    parameters: [
      {
        name: 'format',
        in: 'query',
        description: '`json` for JSON; any other value is ignored.',
        schema: { enum: ['json'] },
      },
    ],
    responses: responses({
      ...GUARDED,
      '200': {
        description: 'The status.',
        content: {
          'text/plain': { schema: { type: 'string', description: 'Several lines per torrent.' } },
          'application/json': { schema: schema('Status') },
        },
      },
    }),
  }),
  '/metrics': readOperations('Metrics', {
    tags: ['observability'],
    summary: 'Prometheus metrics',
    description: 'Here unless -metricsAddr serves them on a listener of their own.',
    responses: responses({
      ...GUARDED,
      '200': {
        description: 'Prometheus text exposition format 0.0.4.',
        content: { 'text/plain': { schema: STRING } },
      },
      '404': text('-metricsAddr is set: /metrics is on that listener.'),
    }),
  }),
  '/debug/': readOperations('DebugIndex', {
    tags: ['observability'],
    summary: 'The diagnostics pages (-debugOnMain)',
    responses: responses({
      ...GUARDED,
      '200': {
        description: 'Their paths.',
        content: { 'application/json': { schema: schema('DebugIndex') } },
      },
      '404': text('The service runs without -debugOnMain.'),
    }),
  }),
  '/debug/{page}': readOperations('DebugPage', {
    tags: ['observability'],
    summary: "Node's diagnostics: heap, event-loop delay, active resources (-debugOnMain)",
    parameters: [
      {
        name: 'page',
        in: 'path',
        required: true,
        description: 'heap, eventloop (delays in ms) or resources.',
        schema: { enum: ['heap', 'eventloop', 'resources'] },
      },
    ],
    responses: responses({
      ...GUARDED,
      '200': {
        description: 'The figures.',
        content: { 'application/json': { schema: schema('DebugPage') } },
      },
      '404': text('No such page, or the service runs without -debugOnMain.'),
    }),
  }),
  '/login': {
    ...readOperations('Login', {
      tags: ['auth'],
      summary: 'The login form',
      description: 'Public. Only with -authToken.',
      parameters: [
        {
          name: 'next',
          in: 'query',
          description: 'A path on this service to go to after logging in.',
          schema: STRING,
        },
      ],
      responses: responses({
        ...ADMISSION,
        '200': { description: 'The page.', content: { 'text/html': { schema: STRING } } },
        '404': text('Login is off: the service runs without -authToken.'),
      }),
      security: PUBLIC,
    }),
    post: {
      operationId: 'postLogin',
      tags: ['auth'],
      summary: 'Log in: set the session cookie',
      description:
        'Public. Wrong tokens are throttled per client, together with wrong Bearer tokens. A cross-origin ' +
        'POST is refused (403).',
      parameters: [
        {
          name: 'next',
          in: 'query',
          description: 'Where to go when the body has no `next`.',
          schema: STRING,
        },
      ],
      requestBody: {
        description: 'The token, at most 4096 bytes.',
        required: true,
        content: {
          'application/x-www-form-urlencoded': { schema: schema('LoginForm') },
          'application/json': { schema: schema('LoginForm') },
        },
      },
      responses: responses({
        ...ADMISSION,
        '303': {
          description: 'Logged in: to `next`, else the dashboard.',
          headers: { Location: header('Location'), 'Set-Cookie': header('Set-Cookie-Session') },
        },
        '400': text('Neither urlencoded nor JSON, not JSON, or no `token`.'),
        '401': {
          description: 'Wrong token: the form again for Accept: text/html, else one line.',
          content: { 'text/html': { schema: STRING }, 'text/plain': TEXT_LINE },
        },
        '403': response('Forbidden'),
        '404': text('Login is off: the service runs without -authToken.'),
        '413': response('PayloadTooLarge'),
      }),
      security: PUBLIC,
    },
  },
  '/logout': {
    post: {
      operationId: 'postLogout',
      tags: ['auth'],
      summary: 'Log out: remove the session cookie',
      description: 'A copied cookie stays valid until it expires: sessions are stateless.',
      responses: responses({
        ...GUARDED,
        '204': { description: 'Logged out.', headers: { 'Set-Cookie': header('Set-Cookie-Cleared') } },
        '404': text('Login is off: the service runs without -authToken.'),
      }),
      security: CHANGING,
    },
  },
  '/': readOperations('Dashboard', {
    tags: ['dashboard'],
    summary: 'The web dashboard',
    description: 'Public: the page calls the API and shows its login form when that answers 401.',
    responses: responses({
      ...ADMISSION,
      '200': { description: 'The page.', content: { 'text/html': { schema: STRING } } },
    }),
    security: PUBLIC,
  }),
  '/ui/{version}/{asset}': readOperations('DashboardAsset', {
    tags: ['dashboard'],
    summary: 'A static asset of the dashboard',
    description: 'Public. The version is a digest of all assets, so responses are immutable.',
    parameters: [
      {
        name: 'version',
        in: 'path',
        required: true,
        description: 'As named by the page.',
        schema: { type: 'string', pattern: '^[0-9a-f]{16}$' },
      },
      { name: 'asset', in: 'path', required: true, description: 'A file name.', schema: STRING },
    ],
    responses: responses({
      ...ADMISSION,
      '200': {
        description: 'The asset.',
        headers: { 'Cache-Control': header('Cache-Control-Immutable') },
        content: {
          'text/javascript': { schema: STRING },
          'text/css': { schema: STRING },
          'image/svg+xml': { schema: STRING },
        },
      },
      '404': text('No such asset, or an old version.'),
    }),
    security: PUBLIC,
  }),
  '/openapi.json': readOperations('OpenApi', {
    tags: ['meta'],
    summary: 'This document',
    description: 'Public.',
    responses: responses({
      ...ADMISSION,
      '200': { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } },
    }),
    security: PUBLIC,
  }),
};

export const OPENAPI_DOCUMENT: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'confluence-ts',
    version: SERVICE_VERSION,
    summary: 'A BitTorrent client run as an HTTP service: any file of a torrent with a plain HTTP GET.',
    description: [
      'A drop-in replacement for anacrolix/confluence. Routes naming a torrent take `ih` or `magnet`; the',
      'first request adds the torrent, which downloads only the pieces readers need.',
      '',
      'Errors are one line of text/plain. Every route answers 405 (with Allow) to a method it does not',
      'take, and unknown paths are 404. Before any route: per-client concurrency (429), the Host',
      'allow-list (421), CORS preflights with -cors (OPTIONS, 204 or 403), cross-origin state-changing',
      'requests (403), then, only with -authToken, credentials (401/403).',
    ].join('\n'),
    license: { name: 'MIT', identifier: 'MIT' },
  },
  tags: [
    { name: 'data', description: 'Bytes of torrents, with Range and validators.' },
    { name: 'torrents', description: 'Metainfo in and out, file tables, playlists, uploads, deletion.' },
    { name: 'observability', description: 'Status, piece states, events, cache, metrics, diagnostics.' },
    { name: 'dht', description: 'The mainline DHT.' },
    { name: 'auth', description: 'Login for the dashboard (-authToken).' },
    { name: 'dashboard', description: 'The web dashboard.' },
    { name: 'meta', description: 'This description.' },
  ],
  paths: PATHS,
  components: {
    schemas: SCHEMAS,
    parameters: PARAMETERS,
    headers: HEADERS,
    responses: RESPONSES,
    securitySchemes: SECURITY_SCHEMES,
  },
  security: [{ bearerAuth: [] }, { cookieSession: [] }],
};

const BODY = Buffer.from(`${JSON.stringify(OPENAPI_DOCUMENT)}\n`);

/** Answers GET or HEAD /openapi.json. */
export function serveOpenApi(res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': String(BODY.length),
    'Cache-Control': 'no-cache',
  });
  res.end(res.req.method === 'HEAD' ? undefined : BODY);
}
