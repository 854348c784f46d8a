// The fake trainer's loss_log.db, written as ai-toolkit's UI logger writes it when the config sets
// logging.use_ui_logger (toolkit/logging_aitk.py, UILogger): the same tables, a row in `steps` and
// `metrics` (`loss/loss`, `learning_rate`) every logging.log_every steps, never the step training
// started from, and on the first commit of a resumed job the rows past that step dropped. Rows are
// flushed every 0.25 s and at the end, like UILogger's buffer; each flush replaces the file whole
// (sql.js keeps the database in memory), by rename, so a reader never sees half a file.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sqlite, walFold, type Database } from '../../cli/sqlite.js';

const SCHEMA = `
  create table if not exists steps (step integer primary key, wall_time real not null);
  create table if not exists metric_keys (key text primary key, first_seen_step integer, last_seen_step integer);
  create table if not exists metrics (
    step integer not null, key text not null, value_real real, value_text text,
    primary key (step, key), foreign key (step) references steps(step) on delete cascade);
  create index if not exists idx_metrics_key_step on metrics (key, step);`;

const FLUSH_SECONDS = 0.25;

export class UiLogger {
  private firstCommit = true;
  private lastFlush = Date.now();
  private dirty = false;

  private constructor(
    private readonly db: Database,
    private readonly file: string,
    private readonly logEvery: number,
  ) {}

  /** The logger the process config asks for, or null (logging.use_ui_logger unset). */
  static async forConfig(proc: Record<string, unknown>, saveRoot: string): Promise<UiLogger | null> {
    const logging = (proc['logging'] ?? {}) as Record<string, unknown>;
    if (logging['use_ui_logger'] !== true) return null;
    const logEvery = Number(logging['log_every'] ?? 100);
    const file = path.join(saveRoot, 'loss_log.db');
    const SQL = await sqlite();
    const db = existsSync(file) ? new SQL.Database(walFold(readFileSync(file), existsSync(`${file}-wal`) ? readFileSync(`${file}-wal`) : null)) : new SQL.Database();
    db.exec('pragma foreign_keys = on');
    db.exec(SCHEMA);
    return new UiLogger(db, file, Number.isInteger(logEvery) && logEvery > 0 ? logEvery : 100);
  }

  /** A training step's loss and learning rate, committed when the step is one log_every asks for. */
  log(step: number, loss: number, lr: number): void {
    if (step % this.logEvery !== 0) return;
    if (this.firstCommit) {
      // (metrics too: sql.js's export() reopens the database, which turns foreign keys off again.)
      this.db.run('delete from metrics where step > ?', [step]);
      this.db.run('delete from steps where step > ?', [step]);
      this.db.run('delete from metric_keys where not exists (select 1 from metrics where metrics.key = metric_keys.key)');
      this.firstCommit = false;
    }
    this.db.run('insert into steps (step, wall_time) values (?, ?) on conflict (step) do update set wall_time = excluded.wall_time', [step, Date.now() / 1000]);
    for (const [key, value] of [['learning_rate', lr], ['loss/loss', loss]] as const) {
      this.db.run(
        `insert into metric_keys (key, first_seen_step, last_seen_step) values (?, ?, ?)
         on conflict (key) do update set first_seen_step = min(first_seen_step, excluded.first_seen_step), last_seen_step = max(last_seen_step, excluded.last_seen_step)`,
        [key, step, step],
      );
      this.db.run('insert into metrics (step, key, value_real, value_text) values (?, ?, ?, null) on conflict (step, key) do update set value_real = excluded.value_real', [step, key, value]);
    }
    this.dirty = true;
    if ((Date.now() - this.lastFlush) / 1000 >= FLUSH_SECONDS) this.flush();
  }

  flush(): void {
    if (!this.dirty) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, this.db.export());
    renameSync(tmp, this.file);
    this.dirty = false;
    this.lastFlush = Date.now();
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
