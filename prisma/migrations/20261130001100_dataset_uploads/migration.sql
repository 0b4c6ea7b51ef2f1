-- Dataset uploads (issue 11): an uploaded dataset's files are artifacts of
-- kind 'dataset-file', content-addressed like model files, deleted with their
-- dataset and counted in the tenant's storage.
ALTER TABLE "artifact" ADD COLUMN "dataset_id" UUID;
ALTER TABLE "artifact" ADD CONSTRAINT "artifact_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE UNIQUE INDEX "artifact_dataset_id_name_key" ON "artifact"("dataset_id", "name");
