-- Custom SQL migration file, put your code below! ---- Losses and learning rates beyond float32's range (a trainer cannot print them) were taken before
-- reportLoss refused them (MAX_LOSS in metrics.service.ts); sums over them overflowed and broke
-- every curve and later batch of their runs. They are brought to the edge of the range, and what
-- was folded from them is rebuilt from the points: loss blocks, the run's summary, its checkpoints'
-- EMA (α = 0.1, as EMA_ALPHA; the same closed form as recomputeSummary in metrics.store.ts).
CREATE TEMP TABLE "clamped_runs" ON COMMIT DROP AS
	SELECT DISTINCT "run_id" FROM "loss_points"
	WHERE abs("loss") > 3.4028234663852886e38 OR abs("lr") > 3.4028234663852886e38;
--> statement-breakpoint
UPDATE "loss_points" SET "loss" = sign("loss") * 3.4028234663852886e38 WHERE abs("loss") > 3.4028234663852886e38;
--> statement-breakpoint
UPDATE "loss_points" SET "lr" = sign("lr") * 3.4028234663852886e38 WHERE abs("lr") > 3.4028234663852886e38;
--> statement-breakpoint
DELETE FROM "loss_blocks" WHERE "run_id" IN (SELECT "run_id" FROM "clamped_runs");
--> statement-breakpoint
INSERT INTO "loss_blocks" ("run_id", "block", "points", "loss_sum", "min_loss", "max_loss", "first_step", "last_step", "last_loss")
SELECT "run_id", "step" / 100, count(*)::int, sum("loss"), min("loss"), max("loss"), min("step"), max("step"),
	(array_agg("loss" ORDER BY "step" DESC))[1]
FROM "loss_points"
WHERE "run_id" IN (SELECT "run_id" FROM "clamped_runs")
GROUP BY "run_id", "step" / 100;
--> statement-breakpoint
WITH "ordered" AS (
	SELECT "run_id", "step", "loss", row_number() OVER w - 1 AS "i", count(*) OVER (PARTITION BY "run_id") AS "n"
	FROM "loss_points" WHERE "run_id" IN (SELECT "run_id" FROM "clamped_runs")
	WINDOW w AS (PARTITION BY "run_id" ORDER BY "step")
), "agg" AS (
	SELECT "run_id", count(*)::int AS "points", max("step") AS "last_step",
		(array_agg("loss" ORDER BY "step" DESC))[1] AS "last_loss", min("loss") AS "min_loss",
		(array_agg("step" ORDER BY "loss", "step"))[1] AS "min_loss_step",
		sum("loss" * CASE WHEN "i" = 0 THEN power(0.9::float8, least("n" - 1, 1000))
			ELSE 0.1::float8 * power(0.9::float8, least("n" - 1 - "i", 1000)) END) AS "ema_loss"
	FROM "ordered" GROUP BY "run_id"
)
UPDATE "run_summaries" s SET "points" = a."points", "last_step" = a."last_step", "last_loss" = a."last_loss",
	"min_loss" = a."min_loss", "min_loss_step" = a."min_loss_step", "ema_loss" = a."ema_loss"
FROM "agg" a WHERE s."run_id" = a."run_id";
--> statement-breakpoint
UPDATE "checkpoints" c SET "ema_loss" = (
	SELECT sum(o."loss" * CASE WHEN o."i" = 0 THEN power(0.9::float8, least(o."n" - 1, 1000))
		ELSE 0.1::float8 * power(0.9::float8, least(o."n" - 1 - o."i", 1000)) END)
	FROM (
		SELECT "loss", row_number() OVER (ORDER BY "step") - 1 AS "i", count(*) OVER () AS "n"
		FROM "loss_points" p WHERE p."run_id" = c."run_id" AND p."step" <= c."step"
	) o
)
WHERE c."run_id" IN (SELECT "run_id" FROM "clamped_runs");
