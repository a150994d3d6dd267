/**
 * DLNA's HTTP headers for /data, so that TVs (Samsung, LG and other DLNA renderers) let the viewer
 * seek: a renderer that asks with `getcontentFeatures.dlna.org: 1` and hears no
 * `contentFeatures.dlna.org` plays the file as a live stream, without a seek bar.
 *
 * The answer says what is true of every /data response: byte ranges work (DLNA.ORG_OP=01: range
 * seek yes, time seek no), the bytes are the original ones (DLNA.ORG_CI=0), and the flags are
 * streaming and background transfer, connection stalling allowed, DLNA 1.5.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const DLNA_CONTENT_FEATURES =
  'DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000';
const TRANSFER_MODES = ['Streaming', 'Interactive', 'Background'];

/** The DLNA response headers for a request's headers; none when the client is not DLNA. */
export function dlnaHeaders(request: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  if (request['getcontentfeatures.dlna.org'] === '1') out['contentFeatures.dlna.org'] = DLNA_CONTENT_FEATURES;
  const mode = request['transfermode.dlna.org'];
  const known =
    typeof mode === 'string'
      ? TRANSFER_MODES.find((m) => m.toLowerCase() === mode.trim().toLowerCase())
      : undefined;
  if (known !== undefined) out['transferMode.dlna.org'] = known;
  return out;
}
