import { PGlite } from '@electric-sql/pglite';
const t0 = performance.now();
const db = await PGlite.create(process.argv[2]);
await db.query('select 1');
const t1 = performance.now();
await db.close();
console.log(`pglite open ${Math.round(t1 - t0)} ms; process ${Math.round(performance.now())} ms`);
