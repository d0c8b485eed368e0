-- 004_partition_lock.sql - month partitions created safely by concurrent
-- writers.
--
-- Two writers reaching a new month at once both saw no partition and both
-- ran CREATE TABLE; the loser's batch failed (and was retried). Now the
-- creators queue on a transaction-scoped advisory lock on the partition's
-- name, and one that finds the table made meanwhile (its catalog view may
-- predate the wait, so the check alone cannot tell) lets the error go.
CREATE OR REPLACE FUNCTION tollgate_usage_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m     date := date_trunc('month', at AT TIME ZONE 'UTC')::date;
    part  text := format('usage_records_%s', to_char(m, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tollgate_usage_partition'),
                                  hashtext(part));
    BEGIN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF usage_records
                 FOR VALUES FROM (%L) TO (%L)',
            part, (m::timestamp AT TIME ZONE 'UTC'),
            ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        NULL;
    END;
END $$;
