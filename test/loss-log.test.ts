// Reading ai-toolkit's loss_log.db: rows a killed trainer left in the write-ahead log count, and a
// file that is not whole, or not the UI logger's, is an error naming it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LossLogError, readLossLog } from '../cli/loss-log.js';
import { sqlite } from '../cli/sqlite.js';

const python = spawnSync('python3', ['-c', 'import sqlite3']).status === 0;
const dir = mkdtempSync(path.join(os.tmpdir(), 'loralab-loss-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!python)('loss_log.db (written by SQLite itself, as ai-toolkit does)', () => {
  it('reads the rows still in the write-ahead log of a trainer that never checkpointed it', () => {
    const live = path.join(dir, 'live.db');
    // ai-toolkit's UILogger: WAL mode, one commit per flush. The copy is taken while the connection
    // is still open, so the newest rows exist only in loss_log.db-wal.
    const script = `
import sqlite3, shutil
c = sqlite3.connect(${JSON.stringify(live)}, isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE steps (step INTEGER PRIMARY KEY, wall_time REAL NOT NULL)')
c.execute('CREATE TABLE metric_keys (key TEXT PRIMARY KEY, first_seen_step INTEGER, last_seen_step INTEGER)')
c.execute('CREATE TABLE metrics (step INTEGER NOT NULL, key TEXT NOT NULL, value_real REAL, value_text TEXT, PRIMARY KEY (step, key))')
for flush in range(5):
    c.execute('BEGIN')
    for s in range(flush * 100 + 1, flush * 100 + 101):
        c.execute('INSERT INTO steps VALUES (?, ?)', (s, 1700000000 + s))
        c.execute("INSERT INTO metrics VALUES (?, 'loss/loss', ?, NULL)", (s, 1.0 / s))
        c.execute("INSERT INTO metrics VALUES (?, 'learning_rate', 0.0001, NULL)", (s,))
    c.execute('COMMIT')
shutil.copy(${JSON.stringify(live)}, ${JSON.stringify(path.join(dir, 'killed.db'))})
shutil.copy(${JSON.stringify(`${live}-wal`)}, ${JSON.stringify(path.join(dir, 'killed.db-wal'))})
`;
    const run = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(statSync(path.join(dir, 'killed.db-wal')).size).toBeGreaterThan(0);
    return readLossLog(path.join(dir, 'killed.db')).then((points) => {
      expect(points).toHaveLength(500);
      expect(points[499]).toEqual({ step: 500, loss: 1 / 500, lr: 0.0001, at: (1700000000 + 500) * 1000 });
    });
  });
});

describe('loss_log.db that cannot be read', () => {
  it('names the file: not SQLite, cut short, or not the UI logger\'s tables', async () => {
    const notSqlite = path.join(dir, 'garbage.db');
    writeFileSync(notSqlite, 'this is not a database at all'.repeat(200));
    await expect(readLossLog(notSqlite)).rejects.toThrow(new RegExp(`^${notSqlite}: is not (a readable|an) SQLite database`));
    await expect(readLossLog(notSqlite)).rejects.toBeInstanceOf(LossLogError);

    if (python) {
      const other = path.join(dir, 'other.db');
      spawnSync('python3', ['-c', `import sqlite3; c = sqlite3.connect(${JSON.stringify(other)}); c.execute('create table t (x)'); c.commit()`]);
      await expect(readLossLog(other)).rejects.toThrow(`${other}: has no table "steps", so it is not ai-toolkit's loss log`);
    }
    expect(existsSync(notSqlite)).toBe(true); // read, never changed
  });
});

describe('loss_log.db rows that are not points', () => {
  it('a loss row that is not a number is refused only when its step is logged (a row without its step is no point, and is left out)', async () => {
    const SQL = await sqlite();
    const file = (name: string, badStep: number) => {
      const db = new SQL.Database();
      db.exec(`create table steps (step integer primary key, wall_time real not null);
        create table metrics (step integer not null, key text not null, value_real real, value_text text, primary key (step, key));`);
      for (let step = 1; step <= 20; step++) {
        db.run('insert into steps values (?, ?)', [step, 1_700_000_000 + step]);
        db.run(`insert into metrics values (?, 'loss/loss', ?, null)`, [step, 1 / step]);
      }
      db.run(`insert or replace into metrics values (?, 'loss/loss', 'n/a', null)`, [badStep]);
      const out = path.join(dir, name);
      writeFileSync(out, db.export());
      db.close();
      return out;
    };
    await expect(readLossLog(file('bad-point.db', 7))).rejects.toThrow(/has a loss row that is not a step and a number \(step 7\)/);
    const points = await readLossLog(file('bad-stepless.db', 99));
    expect(points.map((p) => p.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
