-- Request counters for rate limiting per API key, shared by every API
-- process on this database: one row per key holding the current fixed
-- window's start and its hit count (src/store/limits.ts upserts it once per
-- request). A new window overwrites the row, so the table never grows past
-- one row per key that ever made a request.
CREATE TABLE "rate_limit" (
    "key_id" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "hits" INTEGER NOT NULL,

    CONSTRAINT "rate_limit_pkey" PRIMARY KEY ("key_id")
);

