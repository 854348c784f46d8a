// Wrong keys are logged and slowed per client address; keys that work, from elsewhere, are not.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { throttleKey } from '../src/modules/keys/auth-throttle.js';
import { databaseKinds } from './helpers/databases.js';
import { captureLog, type CapturedLog } from './helpers/log-capture.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const LIMIT = 5;
const WINDOW_SECONDS = 60;
const WRONG_KEY = 'llk_wrong-guess-0123456789abcdefghij';

/** A request from `address` (the server trusts the loopback proxy that says so). */
async function post(url: string, address: string, key: string | null, query = `{ viewer { role } }`) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': address, ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: any; errors?: { message: string; extensions: Record<string, unknown> }[] };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ...body };
}

/** Opens a WebSocket from `address`; resolves with how it ended (or 'acknowledged'). */
function connect(url: string, address: string, key: string) {
  return new Promise<{ code: number; reason: string } | 'acknowledged'>((resolve) => {
    const client = createClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: class extends WebSocket {
        constructor(target: string, protocols?: string | string[]) {
          super(target, protocols, { headers: { 'x-forwarded-for': address } });
        }
      },
      connectionParams: { authorization: `Bearer ${key}` },
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => {}, // the close is what the test reads
      on: {
        connected: () => {
          resolve('acknowledged');
          void client.dispose();
        },
        closed: (event) => resolve({ code: (event as CloseEvent).code, reason: (event as CloseEvent).reason }),
      },
    });
  });
}

describe.each(databaseKinds)('failed authentication on %s', (kind) => {
  let t: TestServer;
  let now = 1_000_000;
  let captured: CapturedLog;
  beforeAll(async () => {
    captured = captureLog('info');
    t = await startTestServer(
      kind,
      { authFailureLimit: LIMIT, authFailureWindowSeconds: WINDOW_SECONDS, trustProxy: ['loopback'] },
      { clock: () => now, log: captured.log },
    );
  });
  afterAll(() => t?.stop());

  it('refuses an address after LIMIT wrong keys with HTTP 429 and a retry time, even its right key; other addresses are not affected', async () => {
    const attacker = '203.0.113.7';
    // A right key from the attacker's address works, and is never counted.
    for (let i = 0; i < LIMIT + 2; i++) expect((await post(t.url, attacker, t.admin.key)).data.viewer.role).toBe('ADMIN');
    for (let i = 0; i < LIMIT; i++) {
      const answer = await post(t.url, attacker, WRONG_KEY);
      expect(answer.errors?.[0]?.extensions.code, `guess ${i + 1}`).toBe('UNAUTHENTICATED');
    }
    const refused = await post(t.url, attacker, WRONG_KEY);
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: WINDOW_SECONDS / LIMIT });
    expect(refused.errors?.[0]?.message).toMatch(/retry in 12 s/);
    expect(refused.retryAfter).toBe(String(WINDOW_SECONDS / LIMIT));
    // While it waits, a right guess answers exactly like a wrong one.
    expect((await post(t.url, attacker, t.admin.key)).status).toBe(429);

    // Valid keys from other addresses, and wrong ones there, are not slowed by it.
    expect((await post(t.url, '198.51.100.2', t.admin.key)).data.viewer.role).toBe('ADMIN');
    expect((await post(t.url, '198.51.100.3', WRONG_KEY)).errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('lets an address try again as time passes: one more guess per window/limit, and all of them after a window', async () => {
    const address = '203.0.113.20';
    for (let i = 0; i < LIMIT; i++) await post(t.url, address, WRONG_KEY);
    expect((await post(t.url, address, WRONG_KEY)).status).toBe(429);

    now += (WINDOW_SECONDS / LIMIT) * 1000;
    expect((await post(t.url, address, t.admin.key)).data.viewer.role).toBe('ADMIN');
    expect((await post(t.url, address, WRONG_KEY)).status).toBe(200); // the one try it earned
    expect((await post(t.url, address, WRONG_KEY)).status).toBe(429);

    now += WINDOW_SECONDS * 1000;
    for (let i = 0; i < LIMIT; i++) expect((await post(t.url, address, WRONG_KEY)).errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect((await post(t.url, address, WRONG_KEY)).status).toBe(429);
  });

  it('counts requests without a key as nothing: they are not guesses', async () => {
    const address = '203.0.113.30';
    for (let i = 0; i < LIMIT * 3; i++) expect((await post(t.url, address, null)).errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect((await post(t.url, address, t.admin.key)).data.viewer.role).toBe('ADMIN');
  });

  it('counts wrong keys on WebSockets too, and closes a throttled address’s socket with 4429', async () => {
    const address = '203.0.113.40';
    for (let i = 0; i < LIMIT; i++) expect(await connect(t.url, address, WRONG_KEY)).toEqual({ code: 4403, reason: 'Forbidden' });
    const throttled = await connect(t.url, address, t.admin.key!);
    expect(throttled).toMatchObject({ code: 4429 });
    expect((throttled as { reason: string }).reason).toMatch(/retry in \d+ s/);
    // HTTP from that address waits too; WebSockets from elsewhere are fine.
    expect((await post(t.url, address, t.admin.key)).status).toBe(429);
    expect(await connect(t.url, '198.51.100.40', t.admin.key!)).toBe('acknowledged');
  });

  it('logs failures a few lines per address, with the address and never the key', async () => {
    const address = '203.0.113.50';
    const before = captured.lines().length;
    for (let i = 0; i < LIMIT * 4; i++) await post(t.url, address, `${WRONG_KEY}-${i}`);
    const lines = captured.lines().slice(before).filter((l) => l.address === address);
    // The first failure, and the moment the address starts waiting: not one line per guess.
    expect(lines.map((l) => l.msg)).toEqual(['failed authentication', 'failed authentication: address throttled']);
    expect(lines[1]).toMatchObject({ level: 40, transport: 'http', failures: LIMIT - 1, retryAfterSeconds: WINDOW_SECONDS / LIMIT });
    expect(captured.text()).not.toContain('wrong-guess');
  });
});

describe('a server not told to trust a proxy', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('pglite', { authFailureLimit: 3 }, { clock: () => 0 });
  });
  afterAll(() => t?.stop());

  it('ignores X-Forwarded-For: a guesser cannot pose as many addresses', async () => {
    for (let i = 0; i < 3; i++) await post(t.url, `203.0.113.${i}`, WRONG_KEY);
    expect((await post(t.url, '203.0.113.99', t.admin.key)).status).toBe(429);
  });
});

describe('the unit a guesser is counted by', () => {
  it('is one IPv4 address, or one IPv6 /64', () => {
    expect(throttleKey('203.0.113.7')).toBe('203.0.113.7');
    expect(throttleKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(throttleKey('2001:db8:1:2:aaaa::1')).toBe(throttleKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(throttleKey('2001:db8:1:2::1')).not.toBe(throttleKey('2001:db8:1:3::1'));
  });
});
