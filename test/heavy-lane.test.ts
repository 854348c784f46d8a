// The heavy lane's own rules, which a test through the API cannot reach without 33 slow requests:
// turns in order of arrival, a bounded queue and a bounded wait, each refusal RATE_LIMITED.
import { describe, expect, it } from 'vitest';
import type { GraphQLError } from 'graphql';
import { Share } from '../src/db/fair-share.js';
import { HeavyLane, MAX_WAITING } from '../src/graphql/heavy-lane.js';

const share = () => new Share(1000);

describe('the heavy lane', () => {
  it('gives turns one at a time, in order of arrival', async () => {
    const lane = new HeavyLane(60_000);
    const [a, b, c] = [share(), share(), share()];
    await lane.enter(a);
    const order: string[] = [];
    const waits = [lane.enter(b).then(() => order.push('b')), lane.enter(c).then(() => order.push('c'))];
    expect(lane.usage()).toEqual({ running: 1, waiting: 2 });
    lane.leave(a);
    await waits[0];
    expect(order).toEqual(['b']);
    expect(lane.usage()).toEqual({ running: 1, waiting: 1 });
    lane.leave(b);
    await waits[1];
    expect(order).toEqual(['b', 'c']);
    lane.leave(c);
    expect(lane.usage()).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses a heavy request with RATE_LIMITED when too many wait, and one that waited too long', async () => {
    const lane = new HeavyLane(50);
    await lane.enter(share());
    const waiting = Array.from({ length: MAX_WAITING }, () => lane.enter(share()).catch((err: GraphQLError) => err));
    const refused = await lane.enter(share()).catch((err: GraphQLError) => err);
    expect(refused?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'HEAVY_REQUESTS', retryAfterSeconds: 5 });
    // Past the longest wait, every waiting one is refused too, and leaves the queue.
    for (const outcome of await Promise.all(waiting)) expect((outcome as GraphQLError).extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(lane.usage()).toEqual({ running: 1, waiting: 0 });
  });

  it('forgets a request that ends while it waits', async () => {
    const lane = new HeavyLane(60_000);
    const [a, b] = [share(), share()];
    await lane.enter(a);
    const waited = lane.enter(b).catch((err: GraphQLError) => err);
    lane.leave(b); // its client went away
    expect(((await waited) as GraphQLError).extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(lane.usage()).toEqual({ running: 1, waiting: 0 });
    lane.leave(a);
    expect(lane.usage()).toEqual({ running: 0, waiting: 0 });
  });
});
