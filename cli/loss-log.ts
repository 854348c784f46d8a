// ai-toolkit's loss_log.db, written by its UI logger (toolkit/logging_aitk.py, UILogger) when the
// config sets logging.use_ui_logger: `steps(step, wall_time)`, `metrics(step, key, value_real,
// value_text)` and `metric_keys(key, first_seen_step, last_seen_step)`, one row per committed step
// every logging.log_every steps (never the step training started from). The loss is key
// `loss/loss`, the learning rate `learning_rate`; wall_time is Unix seconds.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sqlite, walFold } from './sqlite.js';

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

/** Every loss point of a loss_log.db in step order; a file SQLite cannot read whole is an error naming it. */
export async function readLossLog(file: string): Promise<LoggedLoss[]> {
  const SQL = await sqlite();
  const bytes = walFold(await readFile(file), existsSync(`${file}-wal`) ? await readFile(`${file}-wal`) : null);
  let db;
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
    const statement = db.prepare(
      `select m.step, m.value_real, s.wall_time, lr.value_real
       from metrics m join steps s on s.step = m.step
       left join metrics lr on lr.step = m.step and lr.key = $lr
       where m.key = $loss and m.value_real is not null
       order by m.step`,
    );
    statement.bind({ $loss: LOSS_KEY, $lr: LR_KEY });
    const points: LoggedLoss[] = [];
    while (statement.step()) {
      const [step, loss, wallTime, lr] = statement.get() as [number, number, number, number | null];
      if (!Number.isInteger(step) || step < 0 || !Number.isFinite(loss)) throw new LossLogError(file, `has a loss row that is not a step and a number (step ${step})`);
      points.push({ step, loss, lr: lr ?? null, at: Math.round(wallTime * 1000) });
    }
    statement.free();
    return points;
  } finally {
    db.close();
  }
}
