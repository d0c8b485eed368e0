-- 006_quota_counters.sql - quota state shared by every gateway.
--
-- Each admitted request reserves its worst case (estimated prompt plus
-- max_tokens) against every quota that applies (tollgate_quota_reserve,
-- a batch of requests per short transaction); when it ends,
-- tollgate_quota_settle replaces the reservation with its actual tokens. All gateways reserve here, so a
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

-- Reserves, for a batch of requests in order, request i's p_tokens[i]
-- against the quotas listed in p_quotas[i] (an array literal) at p_now.
-- Returns one row per (request, quota): whether it fits, the limit, what
-- was used and reserved before the request. A request that a hard quota
-- refuses reserves nothing. Every counter the batch needs is locked once,
-- in quota id order, and written once, so gateways never deadlock and a
-- busy quota's row is not rewritten per request. Counters of a new period
-- start from the ledger's usage in that period.
CREATE FUNCTION tollgate_quota_reserve(p_requests text[], p_quotas text[],
                                       p_tokens bigint[], p_now timestamptz)
RETURNS TABLE (idx integer, quota_id bigint, fits boolean,
               token_limit bigint, used bigint, reserved bigint,
               hard boolean)
LANGUAGE plpgsql AS $$
DECLARE
    qids    bigint[];
    starts  timestamptz[] := '{}';
    lims    bigint[] := '{}';
    hards   boolean[] := '{}';
    useds   bigint[] := '{}';
    ress    bigint[] := '{}';
    adds    bigint[] := '{}';
    q       record;
    c       record;
    ids     bigint[];
    k       integer;
    refused boolean;
BEGIN
    SELECT array_agg(DISTINCT x ORDER BY x) INTO qids
    FROM (SELECT unnest(l::bigint[]) AS x FROM unnest(p_quotas) AS l) s;
    IF qids IS NULL THEN
        RETURN;
    END IF;
    FOR k IN 1 .. array_length(qids, 1) LOOP
        SELECT qq.id, qq.tenant_id, qq.key_id, qq.model_pattern,
               qq.token_limit, qq.hard,
               tollgate_period_start(qq.period, p_now, t.tz) AS start
        INTO q
        FROM quotas qq JOIN tenants t ON t.id = qq.tenant_id
        WHERE qq.id = qids[k];
        IF NOT FOUND THEN
            -- Cleared meanwhile: no longer a limit.
            starts[k] := NULL; lims[k] := NULL; hards[k] := false;
            useds[k] := 0; ress[k] := 0; adds[k] := 0;
            CONTINUE;
        END IF;
        SELECT qc.used_tokens, qc.reserved_tokens INTO c
        FROM quota_counters qc
        WHERE qc.quota_id = q.id AND qc.period_start = q.start
        FOR UPDATE;
        IF NOT FOUND THEN
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
        END IF;
        starts[k] := q.start; lims[k] := q.token_limit; hards[k] := q.hard;
        useds[k] := c.used_tokens; ress[k] := c.reserved_tokens;
        adds[k] := 0;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_requests, 1), 0) LOOP
        ids := p_quotas[i]::bigint[];
        refused := false;
        FOR j IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
            k := array_position(qids, ids[j]);
            idx := i;
            quota_id := ids[j];
            fits := lims[k] IS NULL OR
                    useds[k] + ress[k] + adds[k] + p_tokens[i] <= lims[k];
            token_limit := lims[k];
            used := useds[k];
            reserved := ress[k] + adds[k];
            hard := hards[k];
            refused := refused OR (NOT fits AND hard);
            RETURN NEXT;
        END LOOP;
        IF NOT refused THEN
            FOR j IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
                k := array_position(qids, ids[j]);
                IF starts[k] IS NULL THEN
                    CONTINUE;
                END IF;
                adds[k] := adds[k] + p_tokens[i];
                INSERT INTO quota_reservations
                    (request_id, quota_id, period_start, tokens)
                VALUES (p_requests[i], ids[j], starts[k], p_tokens[i])
                ON CONFLICT DO NOTHING;
            END LOOP;
        END IF;
    END LOOP;
    FOR k IN 1 .. array_length(qids, 1) LOOP
        IF adds[k] > 0 THEN
            UPDATE quota_counters qc
            SET reserved_tokens = qc.reserved_tokens + adds[k]
            WHERE qc.quota_id = qids[k] AND qc.period_start = starts[k];
        END IF;
    END LOOP;
END $$;

-- Replaces the reservations of a batch of requests by the tokens each
-- actually used, one update per counter, taken in quota id order.
CREATE FUNCTION tollgate_quota_settle(p_requests text[], p_tokens bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    FOR a IN
        WITH d AS (
            DELETE FROM quota_reservations r
            USING unnest(p_requests, p_tokens) AS x(rid, t)
            WHERE r.request_id = x.rid
            RETURNING r.quota_id, r.period_start, r.tokens, x.t
        )
        SELECT d.quota_id, d.period_start, sum(d.tokens) AS res,
               sum(d.t) AS add
        FROM d GROUP BY d.quota_id, d.period_start
        ORDER BY d.quota_id, d.period_start
    LOOP
        UPDATE quota_counters
        SET reserved_tokens = greatest(reserved_tokens - a.res, 0),
            used_tokens = used_tokens + a.add
        WHERE quota_id = a.quota_id AND period_start = a.period_start;
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
