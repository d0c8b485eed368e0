-- 010_settle_spend_lookup.sql - settling spend reservations looks each
-- record up by its key.
--
-- 006's tollgate_quota_settle_spend joined the released reservations to
-- usage_records on request_id and `ts = ANY (p_ts)`: a condition no index
-- serves, which the planner ran as a scan of the month's records against
-- every timestamp of the batch, for every batch the ledger wrote, whether
-- or not any reservation was released. Each reservation now carries its
-- record's time from the batch, and the record is read through the
-- primary key (request_id, ts). A reservation whose record is missing is
-- released all the same, at no spend.
CREATE OR REPLACE FUNCTION tollgate_quota_settle_spend(p_requests text[],
                                                       p_ts timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    FOR a IN
        WITH d AS (
            DELETE FROM quota_spend_reservations r
            USING unnest(p_requests, p_ts) AS x(rid, ts)
            WHERE r.request_id = x.rid
            RETURNING r.request_id, x.ts, r.quota_id, r.period_start, r.nanos
        )
        SELECT d.quota_id, d.period_start, sum(d.nanos) AS res,
               coalesce(sum(u.billed_tenant_nanos), 0) AS add
        FROM d LEFT JOIN LATERAL (
            SELECT billed_tenant_nanos FROM usage_records
            WHERE request_id = d.request_id AND ts = d.ts
        ) u ON true
        GROUP BY d.quota_id, d.period_start
        ORDER BY d.quota_id, d.period_start
    LOOP
        UPDATE quota_counters
        SET reserved_nanos = greatest(reserved_nanos - a.res, 0),
            used_nanos = used_nanos + a.add
        WHERE quota_id = a.quota_id AND period_start = a.period_start;
    END LOOP;
END $$;
