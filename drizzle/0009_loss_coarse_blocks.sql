CREATE TABLE "loss_coarse_blocks" (
	"run_id" uuid NOT NULL,
	"steps" integer NOT NULL,
	"block" integer NOT NULL,
	"points" integer NOT NULL,
	"loss_sum" double precision NOT NULL,
	"min_loss" double precision NOT NULL,
	"max_loss" double precision NOT NULL,
	"first_step" integer NOT NULL,
	"last_step" integer NOT NULL,
	"last_loss" double precision NOT NULL,
	CONSTRAINT "loss_coarse_blocks_run_id_steps_block_pk" PRIMARY KEY("run_id","steps","block")
);
--> statement-breakpoint
ALTER TABLE "loss_coarse_blocks" ADD CONSTRAINT "loss_coarse_blocks_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;