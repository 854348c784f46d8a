// Failed sign-ins, counted per client address. Keys loralab makes are 256 random bits, but
// LORALAB_ADMIN_KEY may be chosen by a person: without a limit it could be guessed at the speed of
// the wire. Each address may fail `limit` times, and earns one more try every window/limit; past
// that it is refused (HTTP 429, WebSocket close 4429) without its key being looked at, so a right
// guess answers exactly like a wrong one until the address has waited. Keys that work are never
// counted. Per process: N replicas behind a load balancer give an address N times the budget.
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';

export interface AuthThrottleOptions {
  /** Failures an address may have in hand before it must wait. */
  limit: number;
  /** How long one address needs to earn back `limit` failures. */
  windowMs: number;
  /** Milliseconds; tests pass their own clock instead of sleeping. */
  now?: () => number;
  log: Logger;
}

export type Transport = 'http' | 'websocket';

interface Bucket {
  /** Failures not yet paid back, as of `at`. */
  debt: number;
  at: number;
  /** Failures since this address's last log line, and when that line was written. */
  unlogged: number;
  loggedAt: number;
  throttleLoggedAt: number;
}

/** Addresses remembered at most; the ones that have paid back their failures go first. */
const MAX_ADDRESSES = 100_000;
/** Log lines about failed sign-ins per window, all addresses together: a spray from many addresses is one line a second, not one per request. */
const MAX_LINES_PER_WINDOW = 60;

/**
 * The unit an attacker pays per: one IPv4 address, or one IPv6 /64 (a single host commonly holds a
 * whole /64, so counting single IPv6 addresses would count nothing).
 */
export function throttleKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${prefix.join(':')}::/64`;
}

export class AuthThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly perMs: number;
  private linesInWindow = 0;
  private lineWindowStart = 0;
  private suppressedLines = 0;

  constructor(private readonly options: AuthThrottleOptions) {
    this.now = options.now ?? Date.now;
    this.perMs = options.limit / options.windowMs;
  }

  /** Seconds the address must wait before its next key is checked; 0 when it may go ahead. */
  retryAfterSeconds(address: string): number {
    const bucket = this.buckets.get(throttleKey(address));
    if (!bucket) return 0;
    const over = this.debtNow(bucket) - (this.options.limit - 1);
    return over > 0 ? Math.max(1, Math.ceil(over / this.perMs / 1000)) : 0;
  }

  /** A key was presented and matched no usable key. */
  failed(address: string, transport: Transport) {
    const key = throttleKey(address);
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      this.makeRoom();
      bucket = { debt: 0, at: now, unlogged: 0, loggedAt: -Infinity, throttleLoggedAt: -Infinity };
      this.buckets.set(key, bucket);
    }
    bucket.debt = this.debtNow(bucket) + 1;
    bucket.at = now;
    bucket.unlogged++;
    const throttled = this.retryAfterSeconds(address);
    // At most a line per address per window, plus one when it starts waiting; never the key itself.
    const firstInWindow = now - bucket.loggedAt >= this.options.windowMs;
    const startsWaiting = throttled > 0 && now - bucket.throttleLoggedAt >= this.options.windowMs;
    if (firstInWindow || startsWaiting) {
      this.logLine(
        { address: key, transport, failures: bucket.unlogged, ...(throttled > 0 ? { retryAfterSeconds: throttled } : {}) },
        throttled > 0 ? 'failed authentication: address throttled' : 'failed authentication',
      );
      bucket.unlogged = 0;
      bucket.loggedAt = now;
      if (throttled > 0) bucket.throttleLoggedAt = now;
    }
  }

  private debtNow(bucket: Bucket) {
    return Math.max(0, bucket.debt - (this.now() - bucket.at) * this.perMs);
  }

  private logLine(fields: Record<string, unknown>, message: string) {
    const now = this.now();
    if (now - this.lineWindowStart >= this.options.windowMs) {
      this.lineWindowStart = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= MAX_LINES_PER_WINDOW) {
      this.suppressedLines++;
      return;
    }
    this.linesInWindow++;
    const suppressed = this.suppressedLines;
    this.suppressedLines = 0;
    this.options.log.warn(suppressed > 0 ? { ...fields, suppressedLines: suppressed } : fields, message);
  }

  private makeRoom() {
    if (this.buckets.size < MAX_ADDRESSES) return;
    for (const [key, bucket] of this.buckets) if (this.debtNow(bucket) === 0) this.buckets.delete(key);
    // Still full of addresses in debt: forget the oldest rather than grow without bound.
    while (this.buckets.size >= MAX_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
