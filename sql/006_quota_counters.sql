-- 006_quota_counters.sql - quota state shared by every gateway.
--
-- Each admitted request reserves its worst case (estimated prompt plus
-- max_tokens) against every quota that applies, in one short transaction
-- (tollgate_quota_reserve); when it ends, tollgate_quota_settle replaces
-- the reservation with its actual tokens. All gateways reserve here, so a
-- hard quota holds across instances: it can be exceeded only by requests
-- whose actual usage was larger than their reserved worst case, by that
-- difference. A reservation whose gateway died is released after an hour
-- (tollgate_quota_expire, run by every gateway now and then).

CREATE TABLE quota_counters (
    quota_id         bigint NOT NULL REFERENCES quotas(id) ON DELETE CASCADE,
    period_start     timestamptz NOT NULL,
    used_tokens      bigint NOT NULL DEFAULT 0,
    reserved_tokens  bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
    PRIMARY KEY (quota_id, period_start)
);

CREATE TABLE quota_reservations (
    request_id    text NOT NULL,
    quota_id      bigint NOT NULL,
    period_start  timestamptz NOT NULL,
    tokens        bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, quota_id)
);
CREATE INDEX quota_reservations_created ON quota_reservations (created_at);

-- The start of the period holding at, in time zone tz.
CREATE FUNCTION tollgate_period_start(period text, at timestamptz, tz text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE period
        WHEN 'total' THEN 'epoch'::timestamptz
        ELSE date_trunc(period, at AT TIME ZONE tz) AT TIME ZONE tz
    END
$$;

-- A shell glob ('glm-4*', 'gpt-?o') as a LIKE pattern.
CREATE FUNCTION tollgate_glob_like(glob text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(replace(replace(glob,
        '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_')
$$;

-- Reserves tokens for request p_request against the quotas p_quotas at
-- time p_now. Returns one row per quota: whether it fits, its limit, what
-- was used and reserved before, and whether it is hard. When a hard quota
-- does not fit, nothing is reserved anywhere. Counters of a new period
-- start from the ledger's usage in that period.
CREATE FUNCTION tollgate_quota_reserve(p_request text, p_quotas bigint[],
                                       p_tokens bigint, p_now timestamptz)
RETURNS TABLE (quota_id bigint, fits boolean, token_limit bigint,
               used bigint, reserved bigint, hard boolean)
LANGUAGE plpgsql AS $$
DECLARE
    q        record;
    c        record;
    starts   timestamptz[] := '{}';
    ids      bigint[] := '{}';
    refused  boolean := false;
BEGIN
    -- Counters are locked in quota id order: no deadlock between gateways.
    FOR q IN
        SELECT qq.id, qq.tenant_id, qq.key_id, qq.model_pattern,
               qq.token_limit, qq.hard,
               tollgate_period_start(qq.period, p_now, t.tz) AS start
        FROM quotas qq JOIN tenants t ON t.id = qq.tenant_id
        WHERE qq.id = ANY (p_quotas)
        ORDER BY qq.id
    LOOP
        INSERT INTO quota_counters (quota_id, period_start, used_tokens)
        SELECT q.id, q.start,
               coalesce(sum(u.prompt_tokens + u.completion_tokens), 0)
        FROM usage_records u
        WHERE u.tenant_id = q.tenant_id
          AND (q.key_id IS NULL OR u.key_id = q.key_id)
          AND (q.model_pattern IS NULL OR
               u.requested_model LIKE tollgate_glob_like(q.model_pattern))
          AND u.ts >= q.start AND u.ts < p_now
        ON CONFLICT DO NOTHING;
        SELECT qc.used_tokens, qc.reserved_tokens INTO c
        FROM quota_counters qc
        WHERE qc.quota_id = q.id AND qc.period_start = q.start
        FOR UPDATE;
        quota_id := q.id;
        fits := q.token_limit IS NULL OR
                c.used_tokens + c.reserved_tokens + p_tokens <= q.token_limit;
        token_limit := q.token_limit;
        used := c.used_tokens;
        reserved := c.reserved_tokens;
        hard := q.hard;
        refused := refused OR (NOT fits AND hard);
        ids := ids || q.id;
        starts := starts || q.start;
        RETURN NEXT;
    END LOOP;
    IF NOT refused THEN
        FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
            UPDATE quota_counters qc
            SET reserved_tokens = qc.reserved_tokens + p_tokens
            WHERE qc.quota_id = ids[i] AND qc.period_start = starts[i];
            INSERT INTO quota_reservations
                (request_id, quota_id, period_start, tokens)
            VALUES (p_request, ids[i], starts[i], p_tokens)
            ON CONFLICT DO NOTHING;
        END LOOP;
    END IF;
END $$;

-- Replaces a request's reservations by the tokens it actually used.
CREATE FUNCTION tollgate_quota_settle(p_request text, p_tokens bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN DELETE FROM quota_reservations
             WHERE request_id = p_request
             RETURNING quota_id, period_start, tokens
    LOOP
        UPDATE quota_counters
        SET reserved_tokens = greatest(reserved_tokens - r.tokens, 0),
            used_tokens = used_tokens + p_tokens
        WHERE quota_id = r.quota_id AND period_start = r.period_start;
    END LOOP;
END $$;

-- Releases reservations older than max_age (their gateway died).
CREATE FUNCTION tollgate_quota_expire(max_age interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN DELETE FROM quota_reservations
             WHERE created_at < now() - max_age
             RETURNING quota_id, period_start, tokens
    LOOP
        UPDATE quota_counters
        SET reserved_tokens = greatest(reserved_tokens - r.tokens, 0)
        WHERE quota_id = r.quota_id AND period_start = r.period_start;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
