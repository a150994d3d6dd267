/**
 * A whole HTTP/1.1 response written straight to a socket, for requests that never become a
 * ServerResponse (a refused websocket upgrade). Closes the connection.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function writeRawResponse(
  socket: Duplex,
  status: number,
  text: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  const body = `${text.replace(/[\r\n]+/g, ' ')}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
