-- Custom SQL migration file, put your code below! --
-- Backfills loss_coarse_blocks (blocks of 1,000 and 10,000 steps, COARSE_BLOCK_STEPS in
-- metrics/summary-arithmetic.ts) from loss_blocks, which every migration before this one keeps
-- exact (0002, 0005): block aggregates merge (counts and sums add, min of mins, max of maxes, the
-- last loss of the highest last step), so the coarse rows are those of the points.
INSERT INTO "loss_coarse_blocks" ("run_id", "steps", "block", "points", "loss_sum", "min_loss", "max_loss", "first_step", "last_step", "last_loss")
SELECT b."run_id", l."steps", b."block" / (l."steps" / 100), sum(b."points")::int, sum(b."loss_sum"), min(b."min_loss"), max(b."max_loss"),
	min(b."first_step"), max(b."last_step"), (array_agg(b."last_loss" ORDER BY b."last_step" DESC))[1]
FROM "loss_blocks" b, (VALUES (1000), (10000)) AS l("steps")
GROUP BY b."run_id", l."steps", b."block" / (l."steps" / 100)
ON CONFLICT ("run_id", "steps", "block") DO NOTHING;
