// The import lease: writes to an imported run come from the key that began the import, with its
// current token; another key waits for the lease to end or lapse; a stale token is LEASE_LOST; the
// run never enters the queue and no agent write ever matches it.
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rows } from '../src/db/client.js';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

const CONFIG = `job: extension
config:
  name: lease_lora
  process:
    - type: sd_trainer
      training_folder: /data/output
      network: { type: lora, linear: 8, linear_alpha: 8 }
      train: { steps: 100, lr: 0.0001, optimizer: no_such_optimizer }
      model: { name_or_path: /models/my-flux }
      datasets: [{ folder_path: /data/datasets/gone }]
`;
const BEGIN = `mutation($i: BeginImportInput!) { beginImport(input: $i) { leaseToken created warnings { key message } run { id status importedFrom hyperparameters { baseModel optimizer steps extra } dataset { uri imageCount } captionStrategy { kind } } } }`;
const LOSS = `mutation($r: ID!, $t: String!, $p: [ImportLossPointInput!]!) { importLoss(runId: $r, leaseToken: $t, points: $p) { accepted duplicates } }`;
const COLUMNS = `mutation($r: ID!, $t: String!, $p: ImportLossColumnsInput!) { importLossColumns(runId: $r, leaseToken: $t, points: $p) { accepted duplicates } }`;
const TEXT = `mutation($r: ID!, $t: String!, $p: ImportLossTextInput!) { importLossText(runId: $r, leaseToken: $t, points: $p) { accepted duplicates } }`;
const FINISH = `mutation($r: ID!, $t: String!) { finishImport(runId: $r, leaseToken: $t, input: { outcome: CANCELLED }) { status lossSummary { points lastStep minLoss } } }`;
const input = (jobKey: string) => ({ folder: '/data/output/lease_lora', jobKey, trainerConfig: CONFIG, experimentName: 'leases' });

describe.each(databaseKinds)('import lease (%s)', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let other: GqlClient;
  beforeAll(async () => {
    t = await startTestServer(kind);
    [editor, other] = await Promise.all([t.as('EDITOR'), t.as('EDITOR')]);
  });
  afterAll(async () => t?.stop());

  it('maps what it can, warns about the rest, and fences every write by key and token', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-0123456789abcdef`) });
    expect(lease.created).toBe(true);
    expect(lease.run).toMatchObject({
      status: 'CANCELLED',
      importedFrom: '/data/output/lease_lora',
      hyperparameters: { baseModel: '/models/my-flux', optimizer: 'adamw8bit', steps: 100, extra: { train: { optimizer: 'no_such_optimizer' } } },
      dataset: { uri: '/data/datasets/gone', imageCount: 0 },
      captionStrategy: { kind: 'NONE' },
    });
    expect(lease.warnings.map((w: { key: string }) => w.key).sort()).toEqual(['model.name_or_path', 'train.optimizer']);
    const runId = lease.run.id;

    expect((await editor.ok(LOSS, { r: runId, t: lease.leaseToken, p: [{ step: 10, loss: 0.5 }, { step: 20, loss: 0.4, lr: 1e-4 }] })).importLoss).toEqual({ accepted: 2, duplicates: 0 });
    expect((await editor.ok(LOSS, { r: runId, t: lease.leaseToken, p: [{ step: 10, loss: 0.5 }, { step: 30, loss: 0.3 }] })).importLoss).toEqual({ accepted: 1, duplicates: 1 });
    await editor.fails('BAD_USER_INPUT', LOSS, { r: runId, t: lease.leaseToken, p: [{ step: 40, loss: 0.1 }, { step: 40, loss: 0.2 }] }, 'points.1.step');

    // Another key: not while the lease holds; never with someone else's token.
    await other.fails('CONFLICT', BEGIN, { i: input(`job-${kind}-0123456789abcdef`) }, 'input.jobKey');
    await other.fails('FORBIDDEN', LOSS, { r: runId, t: lease.leaseToken, p: [{ step: 50, loss: 0.1 }] });
    await editor.fails('LEASE_LOST', LOSS, { r: runId, t: 'not-the-token', p: [{ step: 50, loss: 0.1 }] });
    // Nor through the agent protocol, nor the queue.
    const agent = await t.as('AGENT');
    await agent.fails('LEASE_LOST', `mutation($r: ID!, $t: String!) { reportLoss(runId: $r, leaseToken: $t, points: [{ step: 60, loss: 0.1 }]) { accepted } }`, { r: runId, t: lease.leaseToken });
    await editor.fails('FORBIDDEN', `mutation($r: ID!, $t: String!) { beginRunUpload(runId: $r, leaseToken: $t, input: { kind: CHECKPOINT, fileName: "a.safetensors", sizeBytes: 1, sha256: "${'a'.repeat(64)}", step: 10 }) { alreadyStored } }`, { r: runId, t: lease.leaseToken });
    await editor.fails('INVALID_TRANSITION', `mutation($id: ID!) { retryRun(id: $id) { id } }`, { id: runId });

    const { finishImport } = await editor.ok(FINISH, { r: runId, t: lease.leaseToken });
    expect(finishImport).toEqual({ status: 'CANCELLED', lossSummary: { points: 3, lastStep: 30, minLoss: 0.3 } });
    await editor.fails('LEASE_LOST', LOSS, { r: runId, t: lease.leaseToken, p: [{ step: 50, loss: 0.1 }] });

    // Once given back, the next importer (any key) takes the same run: moved, and resumed to train on to 200 steps.
    const resumed = { ...input(`job-${kind}-0123456789abcdef`), folder: '/mnt/moved/lease_lora', trainerConfig: CONFIG.replace('steps: 100', 'steps: 200') };
    const { beginImport: again } = await other.ok(BEGIN, { i: resumed });
    expect([again.created, again.run.id, again.run.importedFrom, again.run.hyperparameters.steps]).toEqual([false, runId, '/mnt/moved/lease_lora', 200]);
  });

  it('a lease whose importer went quiet lapses, and another key takes the job over', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-lapsing-0123456789`) });
    await other.fails('CONFLICT', BEGIN, { i: input(`job-${kind}-lapsing-0123456789`) });
    await t.database.db.orm.execute(sql`update run_imports set lease_expires_at = now() - interval '1 second' where run_id = ${lease.run.id}`);
    await editor.fails('LEASE_LOST', LOSS, { r: lease.run.id, t: lease.leaseToken, p: [{ step: 1, loss: 1 }] });
    const { beginImport: taken } = await other.ok(BEGIN, { i: input(`job-${kind}-lapsing-0123456789`) });
    expect([taken.created, taken.run.id]).toEqual([false, lease.run.id]);
    expect((await other.ok(LOSS, { r: lease.run.id, t: taken.leaseToken, p: [{ step: 1, loss: 1 }] })).importLoss.accepted).toBe(1);
  });

  it('loss as columns: thousands in a call read back as sent, again adds nothing; more than 50,000 refused; a bad value is refused by list and index, nothing written', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-columns-0123456789`) });
    const r = lease.run.id;
    const tk = lease.leaseToken;
    const steps = Array.from({ length: 20_000 }, (_, i) => i + 1);
    const at = Date.parse('2026-01-02T03:04:05.000Z');
    const points = { steps, losses: steps.map((s) => 1 / s), lrs: steps.map((s) => (s % 2 ? 1e-4 : null)), recordedAtMs: steps.map((s) => at + s * 1000) };
    expect((await editor.ok(COLUMNS, { r, t: tk, p: points })).importLossColumns).toEqual({ accepted: 20_000, duplicates: 0 });
    expect((await editor.ok(COLUMNS, { r, t: tk, p: points })).importLossColumns).toEqual({ accepted: 0, duplicates: 20_000 });

    const bad = async (p: object, field: string) => editor.fails('BAD_USER_INPUT', COLUMNS, { r, t: tk, p: { steps: [60_001, 60_002], losses: [0.5, 0.4], ...p } }, field);
    await bad({ losses: [0.5] }, 'points.losses');
    await bad({ lrs: [1e-4] }, 'points.lrs');
    await bad({ steps: [60_001, 60_001] }, 'points.steps.1');
    await bad({ steps: [60_001, -1] }, 'points.steps.1');
    await bad({ losses: [0.5, 1e300] }, 'points.losses.1');
    await bad({ recordedAtMs: [at, 1e300] }, 'points.recordedAtMs.1');
    const many = Array.from({ length: 50_001 }, (_, i) => i + 1);
    await editor.fails('BAD_USER_INPUT', COLUMNS, { r, t: tk, p: { steps: many, losses: many.map(() => 0.1) } }, 'points.steps');
    await other.fails('FORBIDDEN', COLUMNS, { r, t: tk, p: { steps: [60_001], losses: [0.5] } });

    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { lossPoints(first: 3) { step loss lr recordedAt } } }`, { id: r });
    expect(run.lossPoints).toEqual([
      { step: 1, loss: 1, lr: 1e-4, recordedAt: new Date(at + 1000).toISOString() },
      { step: 2, loss: 0.5, lr: null, recordedAt: new Date(at + 2000).toISOString() },
      { step: 3, loss: 1 / 3, lr: 1e-4, recordedAt: new Date(at + 3000).toISOString() },
    ]);
    expect((await editor.ok(FINISH, { r, t: tk })).finishImport.lossSummary).toEqual({ points: 20_000, lastStep: 20_000, minLoss: 1 / 20_000 });
  });

  it('loss as text columns: read back exactly as sent, again adds nothing, a changed point is rewritten; a bad entry is refused by list and index, nothing written', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-text-0123456789abcd`) });
    const r = lease.run.id;
    const tk = lease.leaseToken;
    const steps = Array.from({ length: 20_000 }, (_, i) => i + 1);
    const at = Date.parse('2026-01-02T03:04:05.000Z');
    const losses = steps.map((s) => 1 / s);
    const text = {
      steps: steps.join(','),
      losses: losses.join(','),
      lrs: steps.map((s) => (s % 2 ? '1e-4' : '')).join(','),
      recordedAtMs: steps.map((s) => (s % 3 ? String(at + s * 1000) : '')).join(','),
    };
    expect((await editor.ok(TEXT, { r, t: tk, p: text })).importLossText).toEqual({ accepted: 20_000, duplicates: 0 });
    expect((await editor.ok(TEXT, { r, t: tk, p: text })).importLossText).toEqual({ accepted: 0, duplicates: 20_000 });
    // A resumed job logged steps 19,999 and 20,000 again, one of them with another loss; and 20,001 is new.
    expect((await editor.ok(TEXT, { r, t: tk, p: { steps: '19999,20000,20001', losses: `${losses[19_998]},0.25,.5e-1`, lrs: '1e-4,,' } })).importLossText).toEqual({ accepted: 2, duplicates: 1 });
    // One point with no lr and no time: an empty text is that one empty entry.
    expect((await editor.ok(TEXT, { r, t: tk, p: { steps: '30000', losses: '-2.5E-3', lrs: '', recordedAtMs: '' } })).importLossText).toEqual({ accepted: 1, duplicates: 0 });
    expect((await editor.ok(TEXT, { r, t: tk, p: { steps: '', losses: '' } })).importLossText).toEqual({ accepted: 0, duplicates: 0 });
    // A fraction of a millisecond is dropped, as a Date drops it.
    expect((await editor.ok(TEXT, { r, t: tk, p: { steps: '30001', losses: '1', recordedAtMs: `${at}.9` } })).importLossText.accepted).toBe(1);
    expect((await editor.ok(`query($id: ID!) { run(id: $id) { lossPoints(afterStep: 30000, first: 1) { step recordedAt } } }`, { id: r })).run.lossPoints).toEqual([
      { step: 30_001, recordedAt: new Date(at).toISOString() },
    ]);

    const count = async () => (await rows<{ n: number }>(t.database.db.orm, sql`select count(*)::int as n from loss_points where run_id = ${r}`))[0]!.n;
    const before = await count();
    const bad = async (p: object, field: string) => editor.fails('BAD_USER_INPUT', TEXT, { r, t: tk, p: { steps: '60001,60002', losses: '0.5,0.4', ...p } }, field);
    await bad({ losses: '0.5,abc' }, 'points.losses.1');
    await bad({ losses: '0.5,0x10' }, 'points.losses.1');
    await bad({ losses: '0.5, 0.4' }, 'points.losses.1');
    await bad({ losses: '0.5,' }, 'points.losses.1');
    await bad({ losses: '0.5,Infinity' }, 'points.losses.1');
    await bad({ losses: '0.5,1e300' }, 'points.losses.1');
    await bad({ losses: '0.5' }, 'points.losses');
    await bad({ lrs: '1e-4' }, 'points.lrs');
    await bad({ lrs: '1e-4,x' }, 'points.lrs.1');
    await bad({ steps: '60001,60001' }, 'points.steps.1');
    await bad({ steps: '60001,-1' }, 'points.steps.1');
    await bad({ steps: '60001,1.5' }, 'points.steps.1');
    await bad({ steps: '60001,99999999999' }, 'points.steps.1');
    await bad({ recordedAtMs: `${at},1e300` }, 'points.recordedAtMs.1');
    const many = Array.from({ length: 50_001 }, (_, i) => i + 1);
    await editor.fails('BAD_USER_INPUT', TEXT, { r, t: tk, p: { steps: many.join(','), losses: many.map(() => '0.1').join(',') } }, 'points.steps');
    await other.fails('FORBIDDEN', TEXT, { r, t: tk, p: { steps: '60001', losses: '0.5' } });
    expect(await count()).toBe(before);

    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { lossPoints(first: 4) { step loss lr recordedAt } } }`, { id: r });
    expect(run.lossPoints.slice(0, 3)).toEqual([
      { step: 1, loss: 1, lr: 1e-4, recordedAt: new Date(at + 1000).toISOString() },
      { step: 2, loss: 0.5, lr: null, recordedAt: new Date(at + 2000).toISOString() },
      { step: 3, loss: 1 / 3, lr: 1e-4, recordedAt: expect.any(String) },
    ]);
    // No time given: the time of the call.
    expect(Date.parse(run.lossPoints[2].recordedAt)).toBeGreaterThan(at + 1e9);
    expect((await editor.ok(FINISH, { r, t: tk })).finishImport.lossSummary).toEqual({ points: 20_003, lastStep: 30_001, minLoss: -2.5e-3 });
    const all = await rows<{ step: number; loss: number }>(t.database.db.orm, sql`select step, loss from loss_points where run_id = ${r} order by step`);
    expect(all.slice(0, 19_998)).toEqual(steps.slice(0, 19_998).map((step, i) => ({ step, loss: losses[i] })));
    expect(all.slice(19_998)).toEqual([{ step: 19_999, loss: losses[19_998] }, { step: 20_000, loss: 0.25 }, { step: 20_001, loss: 0.05 }, { step: 30_000, loss: -2.5e-3 }, { step: 30_001, loss: 1 }]);
  });

  it('files in batches: beginImportUploads declares several in one call, completeUploads stores several in one; bytes that are not the declared ones are refused by index while the rest are stored', async () => {
    const UPLOADS = `artifact { id stored sha256 kind step promptIndex fileName } alreadyStored partSize parts { number url }`;
    const BEGIN_MANY = `mutation($r: ID!, $t: String!, $i: [ArtifactUploadInput!]!) { beginImportUploads(runId: $r, leaseToken: $t, inputs: $i) { ${UPLOADS} } }`;
    const COMPLETE_MANY = `mutation($u: [CompleteUploadInput!]!) { completeUploads(uploads: $u) { id stored sha256 } }`;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const put = async (url: string, body: Buffer) => {
      const res = await fetch(url, { method: 'PUT', body: new Uint8Array(body) });
      expect(res.status).toBe(200);
      return res.headers.get('etag')!;
    };
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-batches-0123456789`) });
    const [r, tk] = [lease.run.id, lease.leaseToken];
    const files = [randomBytes(3000), randomBytes(5000), randomBytes(7000), Buffer.from('step 1 loss 0.5\n')];
    const inputs = [
      { kind: 'CHECKPOINT', fileName: 'lease_lora_000000020.safetensors', sizeBytes: files[0]!.length, sha256: sha(files[0]!), step: 20 },
      { kind: 'SAMPLE', fileName: '1700000000000__000000020_0.jpg', sizeBytes: files[1]!.length, sha256: sha(files[1]!), step: 20, promptIndex: 0 },
      { kind: 'CHECKPOINT', fileName: 'lease_lora.safetensors', sizeBytes: files[2]!.length, sha256: sha(files[2]!), step: 100 },
      { kind: 'TRAINER_LOG', fileName: 'log.txt', sizeBytes: files[3]!.length, sha256: sha(files[3]!) },
    ];
    // Answered in the order declared (the server locks the slots in its own order).
    const began = (await editor.ok(BEGIN_MANY, { r, t: tk, i: inputs })).beginImportUploads;
    expect(began.map((u: { artifact: { fileName: string; stored: boolean }; alreadyStored: boolean; parts: unknown[] }) => [u.artifact.fileName, u.artifact.stored, u.alreadyStored, u.parts.length])).toEqual(
      inputs.map((i) => [i.fileName, false, false, 1]),
    );
    expect(began[1].artifact).toMatchObject({ kind: 'SAMPLE', step: 20, promptIndex: 0 });
    // The third file's PUT carries other bytes (as long): it fails verification, the others are stored.
    const etags = await Promise.all(began.map((u: { parts: { url: string }[] }, i: number) => put(u.parts[0]!.url, i === 2 ? randomBytes(files[2]!.length) : files[i]!)));
    const uploads = began.map((u: { artifact: { id: string } }, i: number) => ({ artifactId: u.artifact.id, parts: [{ number: 1, etag: etags[i] }] }));
    await editor.fails('BAD_USER_INPUT', COMPLETE_MANY, { u: [uploads[0], uploads[0]] }, 'uploads.1.artifactId');
    await other.fails('FORBIDDEN', COMPLETE_MANY, { u: uploads });
    const refused = await editor.fails('BAD_USER_INPUT', COMPLETE_MANY, { u: uploads }, 'uploads.2.parts');
    expect(JSON.stringify(refused)).toContain(`the upload declared ${inputs[2]!.sha256}`);
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { artifacts { fileName stored } events(first: 50) { type data } } }`, { id: r });
    expect(Object.fromEntries(run.artifacts.map((a: { fileName: string; stored: boolean }) => [a.fileName, a.stored]))).toEqual({
      'lease_lora_000000020.safetensors': true,
      '1700000000000__000000020_0.jpg': true,
      'lease_lora.safetensors': false,
      'log.txt': true,
    });
    expect(run.events.filter((e: { type: string }) => e.type === 'CHECKPOINT_STORED').map((e: { data: { step: number } }) => e.data.step)).toEqual([20]);

    // Declared again in one call: the stored ones have nothing to send, the refused one starts over.
    const again = (await editor.ok(BEGIN_MANY, { r, t: tk, i: inputs })).beginImportUploads;
    expect(again.map((u: { alreadyStored: boolean }) => u.alreadyStored)).toEqual([true, true, false, true]);
    const etag = await put(again[2].parts[0].url, files[2]!);
    const [stored] = (await editor.ok(COMPLETE_MANY, { u: [{ artifactId: again[2].artifact.id, parts: [{ number: 1, etag }] }] })).completeUploads;
    expect(stored).toEqual({ id: again[2].artifact.id, stored: true, sha256: inputs[2]!.sha256 });

    // One slot twice in a call: the second declaration replaces the first's unfinished upload.
    const twice = (await editor.ok(BEGIN_MANY, { r, t: tk, i: [{ ...inputs[1]!, step: 40, sha256: sha(files[0]!), sizeBytes: files[0]!.length }, { ...inputs[1]!, step: 40 }] })).beginImportUploads;
    expect(twice[1].artifact).toMatchObject({ step: 40, sha256: inputs[1]!.sha256 });
    expect(twice[0].artifact.id).not.toBe(twice[1].artifact.id);
    await editor.fails('BAD_USER_INPUT', BEGIN_MANY, { r, t: tk, i: Array.from({ length: 101 }, () => inputs[3]) }, 'inputs');
    await editor.fails('BAD_USER_INPUT', BEGIN_MANY, { r, t: tk, i: [inputs[0], { ...inputs[1], sha256: 'x' }] }, 'inputs.1.sha256');
    await other.fails('FORBIDDEN', BEGIN_MANY, { r, t: tk, i: inputs });
    await editor.ok(FINISH, { r, t: tk });
    await editor.fails('LEASE_LOST', BEGIN_MANY, { r, t: tk, i: inputs });
  });

  /** The run's summary, checkpoints' EMA and loss blocks (every level) as a recomputation from its points gives them. */
  async function expectSummedUp(runId: string, context: string) {
    const db = t.database.db.orm;
    const points = await rows<{ step: number; loss: number }>(db, sql`select step, loss from loss_points where run_id = ${runId} order by step`);
    const emaUpTo = (step: number) => points.filter((p) => p.step <= step).reduce<number | null>((e, p) => (e == null ? p.loss : 0.1 * p.loss + 0.9 * e), null)!;
    const min = points.reduce((m, p) => (p.loss < m.loss ? p : m));
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss } checkpoints { step emaLoss } } }`, { id: runId });
    const { emaLoss, ...summary } = run.lossSummary;
    expect(summary, context).toEqual({ points: points.length, lastStep: points.at(-1)!.step, lastLoss: points.at(-1)!.loss, minLoss: min.loss, minLossStep: min.step });
    expect(emaLoss, `${context}: EMA`).toBeCloseTo(emaUpTo(Infinity), 12);
    for (const c of run.checkpoints) expect(c.emaLoss, `${context}: checkpoint ${c.step}'s EMA`).toBeCloseTo(emaUpTo(c.step), 12);
    for (const [table, steps] of [['loss_blocks', 100], ['loss_coarse_blocks', 1_000], ['loss_coarse_blocks', 10_000]] as const) {
      const figures = sql`points, round(loss_sum::numeric, 9) as loss_sum, min_loss, max_loss, first_step, last_step, last_loss`;
      const stored = await rows(db, sql`select block, ${figures} from ${sql.raw(table)} where run_id = ${runId} ${table === 'loss_blocks' ? sql`` : sql`and steps = ${steps}`} order by block`);
      const recomputed = await rows(
        db,
        sql`select block, ${figures} from (select step / ${steps} as block, count(*)::int as points, sum(loss) as loss_sum, min(loss) as min_loss, max(loss) as max_loss,
            min(step) as first_step, max(step) as last_step, (array_agg(loss order by step desc))[1] as last_loss
          from loss_points where run_id = ${runId} group by 1) b order by block`,
      );
      expect(stored, `${context}: blocks of ${steps} steps`).toEqual(recomputed);
    }
  }

  it('every loss batch keeps the summary and loss blocks as the points say: appended, filled in before the last step, rewritten, grown; the checkpoints\' EMA at the end', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-summed-0123456789a`) });
    const r = lease.run.id;
    const tk = lease.leaseToken;
    const wave = (from: number, to: number, shift = 0) => Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 0.3 + 0.2 * Math.sin((from + i + shift) / 37) }));
    const send = async (points: { step: number; loss: number }[], lr?: number) =>
      (
        await editor.ok(TEXT, {
          r,
          t: tk,
          p: { steps: points.map((p) => p.step).join(','), losses: points.map((p) => p.loss).join(','), ...(lr === undefined ? {} : { lrs: points.map(() => lr).join(',') }) },
        })
      ).importLossText;

    // Two batches that committed out of order (the CLI keeps two in flight): the later steps first.
    // One learning rate throughout a batch is stored at every point, as a list of them would be.
    expect(await send(wave(5_001, 9_050), 2e-4)).toEqual({ accepted: 4_050, duplicates: 0 });
    const lrs = await rows<{ lr: number | null; n: number }>(t.database.db.orm, sql`select lr, count(*)::int as n from loss_points where run_id = ${r} group by lr`);
    expect(lrs).toEqual([{ lr: 2e-4, n: 4_050 }]);
    await expectSummedUp(r, 'the later batch');
    expect(await send(wave(1, 5_000))).toEqual({ accepted: 5_000, duplicates: 0 });
    await expectSummedUp(r, 'the earlier batch after it');
    // A checkpoint recorded before the loss up to its step has come: its EMA follows at the end.
    await editor.ok(`mutation($r: ID!, $t: String!, $c: [ImportCheckpointInput!]) { importFiles(runId: $r, leaseToken: $t, checkpoints: $c) { checkpointsAdded } }`, {
      r,
      t: tk,
      c: [{ step: 15_000, fileName: 'lease_lora_000015000.safetensors', sizeBytes: 1, sha256: 'a'.repeat(64) }],
    });
    // A resumed job logged steps again from 8,000 with other losses, and went on to 12,000; sent again, nothing changes.
    expect(await send(wave(8_000, 12_000, 5))).toEqual({ accepted: 4_001, duplicates: 0 });
    await expectSummedUp(r, 'rewritten and grown');
    expect(await send(wave(8_000, 12_000, 5))).toEqual({ accepted: 0, duplicates: 4_001 });
    // Steps not evenly spaced, times with gaps: each point keeps its own.
    const uneven = wave(12_001, 20_000).filter((p) => p.step % 7 !== 0);
    const at = Date.parse('2026-01-02T03:04:05.000Z');
    const times = uneven.map((p) => (p.step % 3 ? String(at + p.step * 1000) : ''));
    const text = { steps: uneven.map((p) => p.step).join(','), losses: uneven.map((p) => p.loss).join(','), recordedAtMs: times.join(',') };
    expect((await editor.ok(TEXT, { r, t: tk, p: text })).importLossText).toEqual({ accepted: uneven.length, duplicates: 0 });
    const stored = await rows<{ step: number; at: number; now: boolean }>(
      t.database.db.orm,
      sql`select step, (extract(epoch from recorded_at) * 1000)::float8 as at, recorded_at > now() - interval '1 hour' as now from loss_points where run_id = ${r} and step > 12000 order by step`,
    );
    expect(stored.map((p) => p.step)).toEqual(uneven.map((p) => p.step));
    expect(stored.map((p) => (p.step % 3 ? p.at : p.now))).toEqual(uneven.map((p) => (p.step % 3 ? at + p.step * 1000 : true)));
    await editor.ok(FINISH, { r, t: tk });
    await expectSummedUp(r, 'finished');
  });

  it('points an import left without their summary and blocks (a server that summed them up only at the end, then stopped) are summed up when an import of the job finishes', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-older-0123456789ab`) });
    const r = lease.run.id;
    const steps = Array.from({ length: 3_000 }, (_, i) => i + 1);
    expect((await editor.ok(TEXT, { r, t: lease.leaseToken, p: { steps: steps.join(','), losses: steps.map((s) => 1 / s).join(',') } })).importLossText.accepted).toBe(3_000);
    const db = t.database.db.orm;
    await db.execute(sql`update run_summaries set points = 0, last_step = null, last_loss = null, min_loss = null, min_loss_step = null, ema_loss = null where run_id = ${r}`);
    await db.execute(sql`delete from loss_blocks where run_id = ${r}`);
    await db.execute(sql`delete from loss_coarse_blocks where run_id = ${r}`);
    // The job imported again: what is there already is not written again.
    const again = await editor.ok(BEGIN, { i: input(`job-${kind}-older-0123456789ab`) });
    expect((await editor.ok(TEXT, { r, t: again.beginImport.leaseToken, p: { steps: steps.join(','), losses: steps.map((s) => 1 / s).join(',') } })).importLossText.accepted).toBe(0);
    await editor.ok(FINISH, { r, t: again.beginImport.leaseToken });
    await expectSummedUp(r, 'finished');
  });

  it('the loss insert that skips the per-point foreign key check leaves no trace past its transaction: later inserts are checked again', async () => {
    const { beginImport: lease } = await editor.ok(BEGIN, { i: input(`job-${kind}-fence-0123456789ab`) });
    expect((await editor.ok(TEXT, { r: lease.run.id, t: lease.leaseToken, p: { steps: '1,2', losses: '0.5,0.4' } })).importLossText.accepted).toBe(2);
    const db = t.database.db.orm;
    const missingRun = '00000000-0000-4000-8000-000000000000';
    await expect(db.execute(sql`insert into loss_points (run_id, step, loss, attempt) values (${missingRun}, 1, 0.5, 1)`)).rejects.toThrow();
  });
});
