/**
 * Small HTTP helpers for tests against the service.
 */

export interface BytesResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

export async function getBytes(url: string, init: RequestInit = {}): Promise<BytesResponse> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

export interface Part {
  readonly headers: Map<string, string>;
  readonly body: Buffer;
}

/** Splits a multipart/byteranges body; throws when the framing is wrong. */
export function parseMultipart(body: Buffer, contentType: string): Part[] {
  const m = /boundary=([^;]+)/.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`\r\n--${m[1]}`);
  const parts: Part[] = [];
  let at = body.indexOf(delim);
  if (at !== 0) throw new Error('body does not start with the boundary');
  for (;;) {
    at += delim.length;
    if (body.subarray(at, at + 2).toString() === '--') {
      if (at + 4 !== body.length || body.subarray(at + 2).toString() !== '\r\n')
        throw new Error('bad trailer');
      return parts;
    }
    const headerEnd = body.indexOf('\r\n\r\n', at);
    const headers = new Map<string, string>();
    for (const line of body
      .subarray(at + 2, headerEnd)
      .toString()
      .split('\r\n')) {
      const c = line.indexOf(':');
      headers.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
    }
    const next = body.indexOf(delim, headerEnd + 4);
    if (next < 0) throw new Error('unterminated part');
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    at = next;
  }
}
