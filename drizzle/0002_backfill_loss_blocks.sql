-- Custom SQL migration file, put your code below! --
-- Backfills loss_blocks (blocks of 100 steps, LOSS_BLOCK_STEPS in metrics.store.ts) from the
-- points written before the rollup existed.
INSERT INTO "loss_blocks" ("run_id", "block", "points", "loss_sum", "min_loss", "max_loss", "first_step", "last_step", "last_loss")
SELECT "run_id", "step" / 100, count(*)::int, sum("loss"), min("loss"), max("loss"), min("step"), max("step"),
	(array_agg("loss" ORDER BY "step" DESC))[1]
FROM "loss_points"
GROUP BY "run_id", "step" / 100
ON CONFLICT ("run_id", "block") DO NOTHING;
