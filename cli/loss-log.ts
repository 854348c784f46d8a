// ai-toolkit's loss_log.db, written by its UI logger (toolkit/logging_aitk.py, UILogger) when the
// config sets logging.use_ui_logger: `steps(step, wall_time)`, `metrics(step, key, value_real,
// value_text)` and `metric_keys(key, first_seen_step, last_seen_step)`, one row per committed step
// every logging.log_every steps (never the step training started from). The loss is key
// `loss/loss`, the learning rate `learning_rate`; wall_time is Unix seconds.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sqlite, walFold, type Database } from './sqlite.js';

export const LOSS_LOG_FILE = 'loss_log.db';
export const LOSS_KEY = 'loss/loss';
export const LR_KEY = 'learning_rate';

export interface LoggedLoss {
  step: number;
  loss: number;
  lr: number | null;
  /** Unix milliseconds. */
  at: number;
}

export class LossLogError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** Rows read between two turns of the event loop: the batch already sent goes out meanwhile. */
const ROWS_PER_TURN = 2_500;

/**
 * A loss_log.db checked whole, its points still in the file: read in step order, a batch at a time
 * (`batches`), so the import sends one batch while it reads the next. Everything that can refuse the
 * file (SQLite's check, the tables, every loss row's step and value) runs in `openLossLog`, before
 * the import writes anything: a damaged file is refused whole, never imported in part.
 */
export interface LossLog {
  /** The first and last points (null when the log holds none): the job's key and times need them before the points go. */
  readonly first: LoggedLoss | null;
  readonly last: LoggedLoss | null;
  /** The points in step order, `size` at a time (the first batch `first`). */
  batches(size: number, first?: number): AsyncGenerator<LoggedLoss[]>;
  close(): void;
}

const POINTS = `select m.step, m.value_real, s.wall_time, lr.value_real
  from metrics m join steps s on s.step = m.step
  left join metrics lr on lr.step = m.step and lr.key = $lr
  where m.key = $loss and m.value_real is not null`;
/** The same rows, only the step and the loss. */
const POINTS_CHECKED = `select m.step as step, m.value_real as loss
  from metrics m join steps s on s.step = m.step
  where m.key = $loss and m.value_real is not null`;

/** A loss_log.db opened and checked; a file SQLite cannot read whole is an error naming it. Close it when done. */
export async function openLossLog(file: string): Promise<LossLog> {
  const SQL = await sqlite();
  const bytes = walFold(await readFile(file), existsSync(`${file}-wal`) ? await readFile(`${file}-wal`) : null);
  let db: Database;
  try {
    db = new SQL.Database(bytes);
  } catch (err) {
    throw new LossLogError(file, `is not an SQLite database (${(err as Error).message})`);
  }
  try {
    let check: unknown;
    try {
      check = db.exec('pragma quick_check')[0]?.values[0]?.[0];
    } catch (err) {
      throw new LossLogError(file, `is not a readable SQLite database (${(err as Error).message})`);
    }
    if (check !== 'ok') throw new LossLogError(file, `is damaged (SQLite's check says: ${String(check)})`);
    const tables = new Set(db.exec("select name from sqlite_master where type = 'table'")[0]?.values.map((v) => String(v[0])) ?? []);
    for (const table of ['steps', 'metrics']) {
      if (!tables.has(table)) throw new LossLogError(file, `has no table "${table}", so it is not ai-toolkit's loss log`);
    }
    const keys = { $loss: LOSS_KEY, $lr: LR_KEY };
    // Every row the batches will read, checked now as `point` checks each (an integer step, a
    // finite number; SQLite stores no NaN, and 9e999 reads as infinity): nothing is refused later.
    // First over the loss rows alone, a plain scan in about half the time of the batches' join; only
    // when one fails does the join say whether it is a point (a row without its step is none).
    const fails = (step: string, loss: string) => `not (typeof(${step}) = 'integer' and ${step} >= 0 and typeof(${loss}) in ('integer', 'real') and abs(${loss}) < 9e999)`;
    if (db.exec(`select 1 from metrics where key = $loss and value_real is not null and ${fails('step', 'value_real')} limit 1`, { $loss: LOSS_KEY }).length) {
      const bad = db.exec(`select step from (${POINTS_CHECKED}) where ${fails('step', 'loss')} order by step limit 1`, { $loss: LOSS_KEY })[0]?.values[0]?.[0];
      if (bad !== undefined) throw new LossLogError(file, `has a loss row that is not a step and a number (step ${String(bad)})`);
    }
    const one = (order: 'asc' | 'desc') => {
      const row = db.exec(`${POINTS} order by m.step ${order} limit 1`, keys)[0]?.values[0];
      return row ? point(file, row) : null;
    };
    const first = one('asc');
    const last = one('desc');
    let closed = false;
    return {
      first,
      last,
      async *batches(size: number, first = size) {
        const statement = db.prepare(`${POINTS} order by m.step`);
        try {
          statement.bind(keys);
          let batch: LoggedLoss[] = [];
          let wanted = first;
          for (let rows = 0; statement.step(); ) {
            batch.push(point(file, statement.get()));
            if (batch.length === wanted) {
              yield batch;
              batch = [];
              wanted = size;
            }
            if (++rows % ROWS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
          }
          if (batch.length) yield batch;
        } finally {
          statement.free();
        }
      },
      close() {
        if (!closed) db.close();
        closed = true;
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

function point(file: string, row: unknown[]): LoggedLoss {
  const [step, loss, wallTime, lr] = row as [number, number, number, number | null];
  if (!Number.isInteger(step) || step < 0 || !Number.isFinite(loss)) throw new LossLogError(file, `has a loss row that is not a step and a number (step ${step})`);
  return { step, loss, lr: lr ?? null, at: Math.round(wallTime * 1000) };
}

/** Every loss point of a loss_log.db in step order; a file SQLite cannot read whole is an error naming it. */
export async function readLossLog(file: string): Promise<LoggedLoss[]> {
  const log = await openLossLog(file);
  try {
    const points: LoggedLoss[] = [];
    for await (const batch of log.batches(10_000)) for (const p of batch) points.push(p);
    return points;
  } finally {
    log.close();
  }
}

/** Points already in memory (a console log's) as a LossLog. */
export function lossInMemory(points: LoggedLoss[]): LossLog {
  return {
    first: points[0] ?? null,
    last: points.at(-1) ?? null,
    async *batches(size: number, first = size) {
      for (let i = 0; i < points.length; i += i === 0 ? first : size) yield points.slice(i, i + (i === 0 ? first : size));
    },
    close() {},
  };
}
