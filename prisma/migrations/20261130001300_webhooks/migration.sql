-- Webhooks (issue 13): a job may name a callback URL, a tenant may register
-- endpoints, and every event that goes out is a delivery row written in the
-- same transaction as the state change it reports (store/webhooks.ts), with a
-- pg-boss dispatch on the 'ticketsmith-webhooks' queue beside it.
ALTER TABLE "job" ADD COLUMN "callback_url" TEXT;

-- The secret a tenant's job callbacks are signed with (one per tenant; rotating replaces it).
CREATE TABLE "webhook_secret" (
    "tenant" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_secret_pkey" PRIMARY KEY ("tenant")
);

CREATE TABLE "webhook_endpoint" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "events" TEXT[] NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_endpoint_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "webhook_endpoint_tenant_created_at_id_idx" ON "webhook_endpoint"("tenant", "created_at" DESC, "id" DESC);

-- One row per (event, target): `target` is 'callback' (the job's callback URL)
-- or 'endpoint:<id>', so an event is enqueued at most once per target.
CREATE TABLE "webhook_delivery" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "job_id" UUID,
    "endpoint_id" UUID,
    "target" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_status_code" INTEGER,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3),
    "locked_until" TIMESTAMPTZ(3),
    "queue_job_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_delivery_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_delivery_status_check" CHECK ("status" IN ('pending', 'delivered', 'failed'))
);
CREATE UNIQUE INDEX "webhook_delivery_event_id_target_key" ON "webhook_delivery"("event_id", "target");
CREATE INDEX "webhook_delivery_tenant_created_at_id_idx" ON "webhook_delivery"("tenant", "created_at" DESC, "id" DESC);
CREATE INDEX "webhook_delivery_status_next_attempt_at_idx" ON "webhook_delivery"("status", "next_attempt_at");
CREATE INDEX "webhook_delivery_job_id_idx" ON "webhook_delivery"("job_id");
CREATE INDEX "webhook_delivery_endpoint_id_idx" ON "webhook_delivery"("endpoint_id");
-- A deleted job's deliveries still go out (the payload holds what they report); a deleted endpoint's stop.
ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "job"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;
