// The embedded store's HTTP side: signed GETs of objects (Range, ETag and 304 through `send`) and
// signed PUTs of upload parts, streamed to disk. No Authorization header: the signature is the
// permission, checked before anything else; a bad or expired one is 403.
import express, { type Request, type Response, type Router } from 'express';
import send from 'send';
import type { Logger } from 'pino';
import { PartSizeError, ROUTE_PREFIX, type FileDriver } from './drivers/file.js';
import { STORAGE_KEY, UploadGoneError } from './drivers/driver.js';
import { contentDisposition, isImageType, OCTET_STREAM, TEXT_PLAIN } from './media.js';
import type { UrlSigner } from './signing.js';
import { countArtifactBytes } from '../../telemetry/metrics.js';

/** Even a signed URL only ever serves these types, and nothing but images and plain text inline. */
const SERVABLE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', TEXT_PLAIN, OCTET_STREAM]);

/** Nothing a served file holds may run or load anything, even opened on its own in a tab. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

function denied(res: Response, verdict: 'expired' | 'invalid') {
  res.status(403).type('text/plain').send(verdict === 'expired' ? 'This URL has expired: ask loralab for a fresh one\n' : 'This URL is not validly signed\n');
}

export function artifactRoutes(driver: FileDriver, signer: UrlSigner, log: Logger): Router {
  const router = express.Router();
  const requested = (req: Request) => new URL(req.originalUrl, 'http://localhost');

  const serveObject = (req: Request, res: Response) => {
    const url = requested(req);
    const verdict = signer.verify('GET', url.pathname, url.searchParams, Math.floor(Date.now() / 1000));
    if (verdict !== 'valid') return denied(res, verdict);
    const key = String(req.params.key);
    if (!STORAGE_KEY.test(key)) return void res.status(404).end();
    const type = url.searchParams.get('type') ?? OCTET_STREAM;
    const inline = url.searchParams.get('disposition') === 'inline' && (isImageType(type) || type === TEXT_PLAIN);
    const expires = Number(url.searchParams.get('expires'));
    res.setHeader('Content-Type', SERVABLE_TYPES.has(type) ? type : OCTET_STREAM);
    res.setHeader('Content-Disposition', contentDisposition(inline ? 'inline' : 'attachment', String(req.params.name)));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    // Objects never change under a key, so the key is a strong validator and a cache may keep the
    // answer for as long as the URL lives.
    res.setHeader('ETag', `"${key}"`);
    res.setHeader('Cache-Control', `private, max-age=${Math.max(0, expires - Math.floor(Date.now() / 1000))}, immutable`);
    res.once('finish', () => countArtifactBytes('out', Number(res.getHeader('content-length')) || 0));
    send(req, driver.objectPath(key), { etag: false, lastModified: false, cacheControl: false, acceptRanges: true, dotfiles: 'allow', index: false })
      .on('error', (err: { status?: number }) => {
        res.removeHeader('Content-Disposition');
        res.status(err.status === 404 ? 404 : 500).type('text/plain').end(err.status === 404 ? 'No such object (it may have been pruned)\n' : '');
      })
      .pipe(res);
  };
  router.get(`${ROUTE_PREFIX}/o/:key/:name`, serveObject); // and HEAD

  router.put(`${ROUTE_PREFIX}/u/:key/:part`, async (req, res) => {
    const url = requested(req);
    const verdict = signer.verify('PUT', url.pathname, url.searchParams, Math.floor(Date.now() / 1000));
    if (verdict !== 'valid') return denied(res, verdict);
    const key = String(req.params.key);
    const number = Number(req.params.part);
    const offset = Number(url.searchParams.get('offset'));
    const length = Number(url.searchParams.get('length'));
    if (!STORAGE_KEY.test(key) || !Number.isSafeInteger(number) || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) return void res.status(404).end();
    const declared = req.headers['content-length'] == null ? null : Number(req.headers['content-length']);
    try {
      const etag = await driver.writePart(key, number, offset, length, req, declared);
      res.status(200).setHeader('ETag', etag).end();
    } catch (err) {
      // A refused body may still be arriving: close instead of reading gigabytes we will not keep.
      if (!req.complete) res.setHeader('Connection', 'close');
      if (err instanceof PartSizeError) res.status(err.status).type('text/plain').send(`${err.message}\n`);
      else if (err instanceof UploadGoneError) res.status(404).type('text/plain').send(`${err.message}\n`);
      else if (req.destroyed || (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return; // the client went away mid-part
      else {
        log.error({ err, key, part: number }, 'could not store an upload part');
        res.status(500).type('text/plain').send('Could not store this part\n');
      }
    }
  });
  return router;
}
