-- CreateEnum
CREATE TYPE "job_status" AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

-- CreateTable
CREATE TABLE "api_key" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_key_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "architecture" JSONB NOT NULL,
    "size_bytes" BIGINT NOT NULL,
    "files" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "reference" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "shapes" JSONB NOT NULL,
    "sha256" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "spec_hash" TEXT NOT NULL,
    "run_name" TEXT NOT NULL,
    "status" "job_status" NOT NULL DEFAULT 'queued',
    "progress" JSONB,
    "backend" TEXT,
    "error_code" TEXT,
    "error_message" TEXT,
    "idempotency_key" TEXT,
    "request_hash" TEXT NOT NULL,
    "model_id" UUID,
    "dataset_id" UUID,
    "result" JSONB,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "worker_id" TEXT,
    "queue_job_id" UUID,
    "heartbeat_at" TIMESTAMPTZ(3),
    "cancel_requested_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "round" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "job_id" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "density" DOUBLE PRECISION NOT NULL,
    "sparsity" DOUBLE PRECISION NOT NULL,
    "layer_density" JSONB NOT NULL,
    "test_accuracy" DOUBLE PRECISION NOT NULL,
    "test_loss" DOUBLE PRECISION NOT NULL,
    "early_stop_iteration" INTEGER NOT NULL,
    "early_stop_test_accuracy" DOUBLE PRECISION NOT NULL,
    "early_stop_validation_loss" DOUBLE PRECISION NOT NULL,
    "params_remaining" BIGINT NOT NULL,
    "params_total" BIGINT NOT NULL,
    "flops" BIGINT,
    "dense_bytes" BIGINT NOT NULL,
    "compressed_bytes" BIGINT NOT NULL,
    "duration_seconds" DOUBLE PRECISION NOT NULL,
    "examples_per_second" DOUBLE PRECISION NOT NULL,
    "backend" TEXT NOT NULL,
    "controls" JSONB NOT NULL,
    "validation_curve" JSONB NOT NULL,
    "metrics" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "round_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "artifact" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "job_id" UUID,
    "round_id" UUID,
    "model_id" UUID,
    "kind" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "size_bytes" BIGINT NOT NULL,
    "storage_key" TEXT NOT NULL,
    "media_type" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "artifact_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "event" (
    "id" BIGSERIAL NOT NULL,
    "job_id" UUID NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL,

    CONSTRAINT "event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "api_key_tenant_idx" ON "api_key"("tenant");

-- CreateIndex
CREATE UNIQUE INDEX "api_key_hash_key" ON "api_key"("hash");

-- CreateIndex
CREATE INDEX "model_tenant_created_at_idx" ON "model"("tenant", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "dataset_tenant_reference_key" ON "dataset"("tenant", "reference");

-- CreateIndex
CREATE INDEX "job_tenant_created_at_id_idx" ON "job"("tenant", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "job_tenant_status_created_at_id_idx" ON "job"("tenant", "status", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "job_status_heartbeat_at_idx" ON "job"("status", "heartbeat_at");

-- CreateIndex
CREATE UNIQUE INDEX "job_tenant_idempotency_key_key" ON "job"("tenant", "idempotency_key");

-- CreateIndex
CREATE UNIQUE INDEX "round_job_id_index_key" ON "round"("job_id", "index");

-- CreateIndex
CREATE INDEX "artifact_tenant_created_at_idx" ON "artifact"("tenant", "created_at");

-- CreateIndex
CREATE INDEX "artifact_sha256_idx" ON "artifact"("sha256");

-- CreateIndex
CREATE UNIQUE INDEX "artifact_job_id_name_key" ON "artifact"("job_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "artifact_model_id_name_key" ON "artifact"("model_id", "name");

-- CreateIndex
CREATE INDEX "event_job_id_id_idx" ON "event"("job_id", "id");

-- AddForeignKey
ALTER TABLE "job" ADD CONSTRAINT "job_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "model"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job" ADD CONSTRAINT "job_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "round" ADD CONSTRAINT "round_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "artifact" ADD CONSTRAINT "artifact_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "artifact" ADD CONSTRAINT "artifact_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "round"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "artifact" ADD CONSTRAINT "artifact_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "event" ADD CONSTRAINT "event_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Not expressible in schema.prisma: wake SSE / WatchJob listeners when a
-- job's event is committed (the payload is the job id; readers re-query).
CREATE FUNCTION "ticketsmith_event_notify"() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('ticketsmith_events', NEW."job_id"::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER "event_notify" AFTER INSERT ON "event"
  FOR EACH ROW EXECUTE FUNCTION "ticketsmith_event_notify"();
