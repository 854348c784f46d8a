CREATE TABLE "loss_blocks" (
	"run_id" uuid NOT NULL,
	"block" integer NOT NULL,
	"points" integer NOT NULL,
	"loss_sum" double precision NOT NULL,
	"min_loss" double precision NOT NULL,
	"max_loss" double precision NOT NULL,
	"first_step" integer NOT NULL,
	"last_step" integer NOT NULL,
	"last_loss" double precision NOT NULL,
	CONSTRAINT "loss_blocks_run_id_block_pk" PRIMARY KEY("run_id","block")
);
--> statement-breakpoint
ALTER TABLE "loss_blocks" ADD CONSTRAINT "loss_blocks_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;