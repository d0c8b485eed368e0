-- 007_attempts.sql - fallback across a route's targets.
--
-- A request tried on a route's next target after the previous one failed
-- (connect error, timeout, 5xx, 429; never after the first byte reached
-- the client) is recorded once, naming the target that served it; this
-- counts the targets that failed before it.
ALTER TABLE usage_records
    ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0
        CHECK (failed_attempts >= 0);
