-- 008_quota_leases.sql - quota leases: admission without a round trip.
--
-- A gateway may hold a lease on a hard token quota: tokens reserved in the
-- quota's counter like a request's worst case (a quota_reservations row
-- named 'lease:GATEWAY:QUOTA'), which it then hands out to requests
-- locally. Every few hundred milliseconds it reports the tokens its
-- requests used (they move from reserved to used) and tops the lease up
-- to a fraction of what the quota has left. The bound is unchanged: a
-- lease is reserved in the counter before any of it is used, so all
-- gateways together can only exceed a hard quota by requests that used
-- more than their worst case. Leases shrink with what is left and vanish
-- in the last tenth of a quota, where requests are reserved one by one. A
-- lease not renewed for a minute (its gateway died) is released.

-- Reports p_used tokens used under lease p_lease of quota p_quota since
-- the last call, and tops the lease up to p_fraction of what is left (0
-- returns it), or gives it back when that share is below p_min (a lease
-- too small for a few requests would only hold back what they need). A lease of an earlier period is settled into that period
-- and a new one taken for the period holding p_now. Returns the period's
-- end and the lease's tokens after the call.
CREATE FUNCTION tollgate_quota_lease(p_lease text, p_quota bigint,
                                     p_used bigint, p_fraction numeric,
                                     p_min bigint, p_now timestamptz)
RETURNS TABLE (period_end timestamptz, leased bigint)
LANGUAGE plpgsql AS $$
DECLARE
    q      record;
    l      record;
    c      quota_counters;
    start  timestamptz;
    take   bigint;
    left_  bigint;
    want   bigint;
    have   boolean;
BEGIN
    SELECT qq.id, qq.tenant_id, qq.key_id, qq.model_pattern, qq.period,
           qq.token_limit, t.tz
    INTO q
    FROM quotas qq JOIN tenants t ON t.id = qq.tenant_id
    WHERE qq.id = p_quota;
    -- The lease as it stands, and its counter, locked.
    SELECT r.period_start, r.tokens INTO l
    FROM quota_reservations r
    WHERE r.request_id = p_lease AND r.quota_id = p_quota;
    have := FOUND;
    IF have THEN
        PERFORM 1 FROM quota_counters qc
        WHERE qc.quota_id = p_quota AND qc.period_start = l.period_start
        FOR UPDATE;
        take := least(p_used, l.tokens);
        UPDATE quota_counters qc
        SET used_tokens = qc.used_tokens + p_used,
            reserved_tokens = greatest(qc.reserved_tokens - take, 0)
        WHERE qc.quota_id = p_quota AND qc.period_start = l.period_start;
        UPDATE quota_reservations r
        SET tokens = r.tokens - take, created_at = now()
        WHERE r.request_id = p_lease AND r.quota_id = p_quota;
        l.tokens := l.tokens - take;
    END IF;
    IF q.id IS NULL OR q.token_limit IS NULL THEN
        -- The quota is gone or has no token limit: no lease.
        IF have THEN
            UPDATE quota_counters qc
            SET reserved_tokens = greatest(qc.reserved_tokens - l.tokens, 0)
            WHERE qc.quota_id = p_quota AND qc.period_start = l.period_start;
            DELETE FROM quota_reservations
            WHERE request_id = p_lease AND quota_id = p_quota;
        END IF;
        RETURN;
    END IF;
    start := tollgate_period_start(q.period, p_now, q.tz);
    IF have AND l.period_start <> start THEN
        -- A new period: give the old lease back.
        UPDATE quota_counters qc
        SET reserved_tokens = greatest(qc.reserved_tokens - l.tokens, 0)
        WHERE qc.quota_id = p_quota AND qc.period_start = l.period_start;
        DELETE FROM quota_reservations
        WHERE request_id = p_lease AND quota_id = p_quota;
        have := false;
    END IF;
    c := tollgate_quota_counter(p_quota, start, p_now);
    leased := CASE WHEN have THEN l.tokens ELSE 0 END;
    -- What the quota has left besides this lease, and the share wanted.
    left_ := greatest(q.token_limit - c.used_tokens - c.reserved_tokens, 0);
    want := floor((left_ + leased) * p_fraction)::bigint;
    -- Near the end of a quota every token counts: no gateway holds any
    -- back, and each request is reserved on its own.
    IF left_ + leased < q.token_limit / 10 OR want < p_min THEN
        want := 0;
    END IF;
    IF want > leased THEN
        take := least(want - leased, left_);
    ELSE
        take := -(leased - want);   -- give back the excess
    END IF;
    IF take <> 0 THEN
        UPDATE quota_counters qc
        SET reserved_tokens = greatest(qc.reserved_tokens + take, 0)
        WHERE qc.quota_id = p_quota AND qc.period_start = start;
        leased := leased + take;
    END IF;
    IF NOT have THEN
        INSERT INTO quota_reservations (request_id, quota_id, period_start,
                                        tokens)
        VALUES (p_lease, p_quota, start, leased);
    ELSE
        UPDATE quota_reservations r SET tokens = leased, created_at = now()
        WHERE r.request_id = p_lease AND r.quota_id = p_quota;
    END IF;
    period_end := CASE q.period
        WHEN 'total' THEN 'infinity'::timestamptz
        ELSE ((start AT TIME ZONE q.tz) + ('1 ' || q.period)::interval)
             AT TIME ZONE q.tz END;
    RETURN NEXT;
END $$;

-- Leases are renewed every few hundred milliseconds: one idle for a
-- minute belongs to a gateway that died.
CREATE OR REPLACE FUNCTION tollgate_quota_expire(max_age interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN DELETE FROM quota_reservations
             WHERE created_at < now() - CASE WHEN request_id LIKE 'lease:%'
                                        THEN least(max_age, interval '1 minute')
                                        ELSE max_age END
             RETURNING quota_id, period_start, tokens
    LOOP
        UPDATE quota_counters
        SET reserved_tokens = greatest(reserved_tokens - r.tokens, 0)
        WHERE quota_id = r.quota_id AND period_start = r.period_start;
        n := n + 1;
    END LOOP;
    FOR r IN DELETE FROM quota_spend_reservations
             WHERE created_at < now() - max_age
             RETURNING quota_id, period_start, nanos
    LOOP
        UPDATE quota_counters
        SET reserved_nanos = greatest(reserved_nanos - r.nanos, 0)
        WHERE quota_id = r.quota_id AND period_start = r.period_start;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
