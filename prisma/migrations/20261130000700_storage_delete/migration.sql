-- Storage that can shrink: models, datasets and jobs can be deleted, and
-- blobs no row references are collected (src/store/blob-gc.ts).

-- A finished job outlives the model / dataset it used: its reference is
-- cleared (the spec keeps `model:<id>` as a name). Deleting one that a queued
-- or running job uses is refused by the service before it gets here.
ALTER TABLE "job" DROP CONSTRAINT "job_model_id_fkey";
ALTER TABLE "job" ADD CONSTRAINT "job_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "model"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "job" DROP CONSTRAINT "job_dataset_id_fkey";
ALTER TABLE "job" ADD CONSTRAINT "job_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- "Is this model / dataset in use", and the FK actions above.
CREATE INDEX "job_model_id_idx" ON "job"("model_id");
CREATE INDEX "job_dataset_id_idx" ON "job"("dataset_id");

-- Retention: finished jobs by age.
CREATE INDEX "job_status_finished_at_idx" ON "job"("status", "finished_at");

-- Blob collection: "does any row still reference this key".
CREATE INDEX "artifact_storage_key_idx" ON "artifact"("storage_key");

-- Tenant storage accounting: distinct blobs per tenant.
CREATE INDEX "artifact_tenant_storage_key_idx" ON "artifact"("tenant", "storage_key");
