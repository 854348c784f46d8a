// Who is calling, the same way for HTTP requests and WebSocket connections: the client's address
// (through the proxies TRUST_PROXY names), whether that address must wait after failed keys, and
// the key's principal.
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { Principal } from '../modules/keys/keys.service.js';
import type { Authenticator } from '../modules/keys/authenticator.js';
import type { AuthThrottle, Transport } from '../modules/keys/auth-throttle.js';

export type SignIn = { principal: Principal | null } | { retryAfterSeconds: number };

/** The WebSocket close code for a throttled address (4xxx: the application's own range). */
export const THROTTLED_CLOSE_CODE = 4429;

export const throttledMessage = (retryAfterSeconds: number) =>
  `Too many failed authentications from this address: retry in ${retryAfterSeconds} s`;

export class SignInGate {
  private readonly trust: (address: string, hop: number) => boolean;

  constructor(
    private readonly authenticator: Authenticator,
    private readonly throttle: AuthThrottle,
    trustProxy: string[],
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
}
