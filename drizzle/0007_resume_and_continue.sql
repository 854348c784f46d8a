ALTER TABLE "runs" ADD COLUMN "parent_run_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "continued_from_checkpoint_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "resumed_from_checkpoint_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "resumed_steps" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_parent_run_id_runs_id_fk" FOREIGN KEY ("parent_run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;