// Who is calling, the same way for HTTP requests and WebSocket connections: the client's address
// (through the proxies TRUST_PROXY names), whether that address must wait after failed keys
// (auth-throttle.ts), and the key's principal. A socket is registered under its key so that
// revoking the key closes it (key-sockets.ts), and every subscribe on it asks again.
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { GraphQLError } from 'graphql';
import { CloseCode, type Context as SocketContext } from 'graphql-ws';
import type { Extra } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import proxyaddr from 'proxy-addr';
import type { Principal } from '../modules/keys/keys.service.js';
import type { Authenticator } from '../modules/keys/authenticator.js';
import type { AuthThrottle, Transport } from '../modules/keys/auth-throttle.js';
import { REVOKED_CLOSE_CODE, REVOKED_REASON, type KeySockets } from './key-sockets.js';
import { apiError, errorResponse, unauthenticated } from './errors.js';

export type SignIn = { principal: Principal | null } | { retryAfterSeconds: number };

export type SocketSession = SocketContext<{ authorization?: string }, Extra & { principal?: Principal | null }>;

/** The WebSocket close code for a throttled address (4xxx: the application's own range). */
export const THROTTLED_CLOSE_CODE = 4429;

export const throttledMessage = (retryAfterSeconds: number) =>
  `Too many failed authentications from this address: retry in ${retryAfterSeconds} s`;

const KEY_CHECK_FAILED = 'Could not check the API key; try again';

export class SignInGate {
  private readonly trust: (address: string, hop: number) => boolean;

  constructor(
    private readonly authenticator: Authenticator,
    private readonly throttle: AuthThrottle,
    private readonly sockets: KeySockets,
    trustProxy: string[],
    private readonly log: Logger,
  ) {
    this.trust = proxyaddr.compile(trustProxy);
  }

  clientAddress(req: IncomingMessage) {
    return proxyaddr(req, this.trust);
  }

  /** A request without a key is not a failure: only a presented key that matches nothing counts. */
  async signIn(authorization: string | undefined, req: IncomingMessage, transport: Transport): Promise<SignIn> {
    const address = this.clientAddress(req);
    const retryAfterSeconds = this.throttle.retryAfterSeconds(address);
    if (retryAfterSeconds > 0) return { retryAfterSeconds };
    const principal = await this.authenticator.authenticate(authorization);
    if (!principal && authorization) this.throttle.failed(address, transport);
    return { principal };
  }

  /** Express middleware: the principal in res.locals.principal, or the request answered here. */
  http(): RequestHandler {
    return async (req, res, next) => {
      let signIn: SignIn;
      try {
        signIn = await this.signIn(req.headers.authorization, req, 'http');
      } catch (err) {
        // The database did not answer: a passing fault the client may retry (the agent does on 503).
        this.log.error({ err }, 'checking an API key failed');
        res.status(503).json(errorResponse('INTERNAL_SERVER_ERROR', KEY_CHECK_FAILED));
        return;
      }
      if ('retryAfterSeconds' in signIn) {
        const error = apiError('RATE_LIMITED', throttledMessage(signIn.retryAfterSeconds), { retryAfterSeconds: signIn.retryAfterSeconds });
        res.status(429).set('retry-after', String(signIn.retryAfterSeconds)).json({ errors: [error.toJSON()] });
        return;
      }
      res.locals.principal = signIn.principal;
      next();
    };
  }

  /** graphql-ws onConnect: true lets the socket in; otherwise it is closed with the reason. */
  async openSocket(ctx: SocketSession): Promise<boolean> {
    const { socket, request } = ctx.extra;
    let signIn: SignIn;
    try {
      signIn = await this.signIn(ctx.connectionParams?.authorization, request, 'websocket');
    } catch (err) {
      this.log.error({ err }, 'checking an API key failed');
      socket.close(CloseCode.InternalServerError, KEY_CHECK_FAILED);
      return false;
    }
    if ('retryAfterSeconds' in signIn) {
      socket.close(THROTTLED_CLOSE_CODE, throttledMessage(signIn.retryAfterSeconds));
      return false;
    }
    if (!signIn.principal) return false; // graphql-ws closes with 4403 Forbidden
    ctx.extra.principal = signIn.principal;
    this.sockets.add(signIn.principal.keyId, socket);
    return true;
  }

  /**
   * graphql-ws onSubscribe: the key may have been revoked since the socket opened (and the NOTIFY
   * missed). Returns the errors that refuse the operation, with the socket closed; else undefined.
   */
  async recheckSocket(ctx: SocketSession): Promise<readonly GraphQLError[] | undefined> {
    let principal: Principal | null;
    try {
      principal = await this.authenticator.authenticate(ctx.connectionParams?.authorization);
    } catch (err) {
      this.log.error({ err }, 'checking an API key failed');
      return [apiError('INTERNAL_SERVER_ERROR', KEY_CHECK_FAILED)];
    }
    if (principal && principal.keyId === ctx.extra.principal?.keyId) return undefined;
    ctx.extra.socket.close(REVOKED_CLOSE_CODE, REVOKED_REASON);
    return [unauthenticated(REVOKED_REASON)];
  }
}
