CREATE TABLE "run_imports" (
	"run_id" uuid PRIMARY KEY NOT NULL,
	"job_key" text NOT NULL,
	"trainer_config" text NOT NULL,
	"warnings" jsonb DEFAULT '[]' NOT NULL,
	"api_key_id" uuid,
	"lease_token" text,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "imported_from" text;--> statement-breakpoint
ALTER TABLE "run_imports" ADD CONSTRAINT "run_imports_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_imports" ADD CONSTRAINT "run_imports_api_key_id_api_keys_id_fk" FOREIGN KEY ("api_key_id") REFERENCES "public"."api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "run_imports_job_key_idx" ON "run_imports" USING btree ("job_key");