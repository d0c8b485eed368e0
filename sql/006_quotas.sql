-- 006_quotas.sql - quota state shared by every gateway.
--
-- Each admitted request reserves its worst case (estimated prompt plus
-- max_tokens) against every quota that applies (tollgate_quota_reserve,
-- a batch of requests per short transaction); when it ends,
-- tollgate_quota_settle replaces the reservation with its actual tokens.
-- All gateways reserve here, so a hard quota holds across instances: it
-- can be exceeded only by requests whose actual usage was larger than
-- their reserved worst case, by that difference.
--
-- Spend limits are in the tenant's billing currency, after promotions.
-- Admission reserves the most a request can cost: its worst-case tokens at
-- the dearest token class of the price in force, converted with the
-- month's rate (tollgate_worst_nanos). Its actual cost is known when the
-- ledger prices the record, after grants and discounts; the ledger then
-- replaces the spend reservation with billed_tenant_nanos
-- (tollgate_quota_settle_spend) in the transaction that prices it. A
-- request whose model has no price, or whose price no rate converts,
-- cannot be bounded and reserves nothing (the bill lists it as unpriced).
--
-- Leases make admission cheap: a gateway may hold a lease on a hard token
-- quota, tokens reserved in the counter like a request's worst case (a
-- quota_reservations row named 'lease:GATEWAY:QUOTA'), which it hands out
-- to requests locally; every few hundred milliseconds it reports what its
-- requests used and tops the lease up (tollgate_quota_lease). A lease is
-- reserved before any of it is used, so the bound above is unchanged.
--
-- A reservation whose gateway died is released after an hour, a lease not
-- renewed for a minute (tollgate_quota_expire, run by every gateway now
-- and then).

CREATE TABLE quota_counters (
    quota_id         bigint NOT NULL REFERENCES quotas(id) ON DELETE CASCADE,
    period_start     timestamptz NOT NULL,
    used_tokens      bigint NOT NULL DEFAULT 0,
    reserved_tokens  bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
    used_nanos       bigint NOT NULL DEFAULT 0,
    reserved_nanos   bigint NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
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

CREATE TABLE quota_spend_reservations (
    request_id    text NOT NULL,
    quota_id      bigint NOT NULL,
    period_start  timestamptz NOT NULL,
    nanos         bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, quota_id)
);
CREATE INDEX quota_spend_reservations_created
    ON quota_spend_reservations (created_at);

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

-- The most p_tokens tokens of provider's model can cost tenant p_tenant at
-- p_at, in nano-units of p_currency; NULL without a price or a rate. The
-- price is chosen as the ledger chooses it.
CREATE FUNCTION tollgate_worst_nanos(p_tenant bigint, p_provider text,
                                     p_model text, p_tokens bigint,
                                     p_at timestamptz, p_currency text,
                                     p_tz text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT ceil(p_tokens * greatest(p.input, coalesce(p.cached_input, p.input),
                                    coalesce(p.cache_write, p.input), p.output)
                * 1000
                * CASE WHEN p.currency = p_currency THEN 1 ELSE fx.rate END)::bigint
    FROM prices p
    LEFT JOIN fx_rates fx ON fx.base = p.currency AND fx.quote = p_currency
         AND fx.month = date_trunc('month', p_at AT TIME ZONE p_tz)::date
    WHERE p.provider = p_provider AND p.model = p_model
      AND p.effective_from <= p_at
      AND (p.tenant_id IS NULL OR p.tenant_id = p_tenant)
    ORDER BY (p.tenant_id IS NOT NULL) DESC, p.effective_from DESC,
             (p.currency = p_currency) DESC, p.id
    LIMIT 1
$$;

-- Locks the counter of quota p_quota for the period starting p_start,
-- creating it when this is the period's first use: a new period starts
-- from what the ledger already holds for it (usage recorded before the
-- quota existed, or by imports).
CREATE FUNCTION tollgate_quota_counter(p_quota bigint, p_start timestamptz,
                                       p_now timestamptz)
RETURNS quota_counters LANGUAGE plpgsql AS $$
DECLARE
    q  record;
    c  quota_counters;
BEGIN
    SELECT * INTO c FROM quota_counters qc
    WHERE qc.quota_id = p_quota AND qc.period_start = p_start
    FOR UPDATE;
    IF FOUND THEN
        RETURN c;
    END IF;
    SELECT * INTO q FROM quotas WHERE id = p_quota;
    INSERT INTO quota_counters (quota_id, period_start, used_tokens,
                                used_nanos)
    SELECT p_quota, p_start,
           coalesce(sum(u.prompt_tokens + u.completion_tokens), 0),
           coalesce(sum(u.billed_tenant_nanos), 0)
    FROM usage_records u
    WHERE u.tenant_id = q.tenant_id
      AND (q.key_id IS NULL OR u.key_id = q.key_id)
      AND (q.model_pattern IS NULL OR
           u.requested_model LIKE tollgate_glob_like(q.model_pattern))
      AND u.ts >= p_start AND u.ts < p_now
    ON CONFLICT DO NOTHING;
    SELECT * INTO c FROM quota_counters qc
    WHERE qc.quota_id = p_quota AND qc.period_start = p_start
    FOR UPDATE;
    RETURN c;
END $$;

-- Reserves, for a batch of requests in order, request i's p_tokens[i]
-- (and, against spend limits, the most they can cost at p_providers[i]'s
-- p_models[i]) against the quotas listed in p_quotas[i] (an array
-- literal) at p_now.
-- Returns one row per (request, quota): whether it fits, the limit, what
-- was used and reserved before the request. A request that a hard quota
-- refuses reserves nothing. Every counter the batch needs is locked once,
-- in quota id order, and written once, so gateways never deadlock and a
-- busy quota's row is not rewritten per request. Counters of a new period
-- start from the ledger's usage in that period.
CREATE FUNCTION tollgate_quota_reserve(p_requests text[], p_quotas text[],
                                       p_tokens bigint[], p_providers text[],
                                       p_models text[], p_now timestamptz)
RETURNS TABLE (idx integer, quota_id bigint, fits boolean,
               token_limit bigint, used bigint, reserved bigint,
               hard boolean, spend_limit_nanos bigint, used_nanos bigint,
               reserved_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    qids    bigint[];
    starts  timestamptz[] := '{}';
    lims    bigint[] := '{}';
    hards   boolean[] := '{}';
    useds   bigint[] := '{}';
    ress    bigint[] := '{}';
    adds    bigint[] := '{}';
    slims   bigint[] := '{}';
    nused   bigint[] := '{}';
    nress   bigint[] := '{}';
    nadds   bigint[] := '{}';
    tens    bigint[] := '{}';
    curs    text[] := '{}';
    tzs     text[] := '{}';
    worst   bigint[];
    q       record;
    c       quota_counters;
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
               qq.token_limit, qq.hard, t.currency, t.tz,
               (qq.spend_limit * 1000000000)::bigint AS spend_nanos,
               tollgate_period_start(qq.period, p_now, t.tz) AS start
        INTO q
        FROM quotas qq JOIN tenants t ON t.id = qq.tenant_id
        WHERE qq.id = qids[k];
        IF NOT FOUND THEN
            -- Cleared meanwhile: no longer a limit.
            starts[k] := NULL; lims[k] := NULL; hards[k] := false;
            useds[k] := 0; ress[k] := 0; adds[k] := 0;
            slims[k] := NULL; nused[k] := 0; nress[k] := 0; nadds[k] := 0;
            tens[k] := 0; curs[k] := NULL; tzs[k] := NULL;
            CONTINUE;
        END IF;
        c := tollgate_quota_counter(q.id, q.start, p_now);
        starts[k] := q.start; lims[k] := q.token_limit; hards[k] := q.hard;
        useds[k] := c.used_tokens; ress[k] := c.reserved_tokens;
        adds[k] := 0;
        slims[k] := q.spend_nanos; nused[k] := c.used_nanos;
        nress[k] := c.reserved_nanos; nadds[k] := 0;
        tens[k] := q.tenant_id; curs[k] := q.currency; tzs[k] := q.tz;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_requests, 1), 0) LOOP
        ids := p_quotas[i]::bigint[];
        refused := false;
        worst := '{}';
        FOR j IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
            k := array_position(qids, ids[j]);
            -- The most this request can cost, in the tenant's currency
            -- (0 when its model has no price or no rate converts it).
            worst[j] := CASE WHEN slims[k] IS NULL THEN 0 ELSE
                coalesce(tollgate_worst_nanos(tens[k], p_providers[i],
                    p_models[i], p_tokens[i], p_now, curs[k], tzs[k]), 0) END;
            idx := i;
            quota_id := ids[j];
            fits := (lims[k] IS NULL OR
                     useds[k] + ress[k] + adds[k] + p_tokens[i] <= lims[k])
                AND (slims[k] IS NULL OR
                     nused[k] + nress[k] + nadds[k] + worst[j] <= slims[k]);
            token_limit := lims[k];
            used := useds[k];
            reserved := ress[k] + adds[k];
            hard := hards[k];
            spend_limit_nanos := slims[k];
            used_nanos := nused[k];
            reserved_nanos := nress[k] + nadds[k];
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
                IF worst[j] > 0 THEN
                    nadds[k] := nadds[k] + worst[j];
                    INSERT INTO quota_spend_reservations
                        (request_id, quota_id, period_start, nanos)
                    VALUES (p_requests[i], ids[j], starts[k], worst[j])
                    ON CONFLICT DO NOTHING;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
    FOR k IN 1 .. array_length(qids, 1) LOOP
        IF adds[k] > 0 OR nadds[k] > 0 THEN
            UPDATE quota_counters qc
            SET reserved_tokens = qc.reserved_tokens + adds[k],
                reserved_nanos = qc.reserved_nanos + nadds[k]
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

-- Replaces the spend reservations of records the ledger just priced by
-- what each cost the tenant (billed_tenant_nanos; 0 when no rate
-- converted it), one update per counter, in quota id order.
CREATE FUNCTION tollgate_quota_settle_spend(p_requests text[],
                                            p_ts timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    FOR a IN
        WITH d AS (
            DELETE FROM quota_spend_reservations r
            USING unnest(p_requests) AS x(rid)
            WHERE r.request_id = x.rid
            RETURNING r.request_id, r.quota_id, r.period_start, r.nanos
        )
        SELECT d.quota_id, d.period_start, sum(d.nanos) AS res,
               coalesce(sum(u.billed_tenant_nanos), 0) AS add
        FROM d JOIN usage_records u ON u.request_id = d.request_id
              AND u.ts = ANY (p_ts)
        GROUP BY d.quota_id, d.period_start
        ORDER BY d.quota_id, d.period_start
    LOOP
        UPDATE quota_counters
        SET reserved_nanos = greatest(reserved_nanos - a.res, 0),
            used_nanos = used_nanos + a.add
        WHERE quota_id = a.quota_id AND period_start = a.period_start;
    END LOOP;
END $$;

-- Reports p_used tokens used under lease p_lease of quota p_quota since
-- the last call, and tops the lease up to p_fraction of what is left (0
-- returns it), or gives it back when that share is below p_min (a lease
-- too small for a few requests would only hold back what they need).
-- Leases shrink with what is left and vanish in the last tenth of a
-- quota, where requests are reserved one by one. A lease of an earlier
-- period is settled into that period and a new one taken for the period
-- holding p_now. Returns the period's
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

-- Releases reservations older than max_age (their gateway died), and
-- leases idle for a minute (leases are renewed every few hundred
-- milliseconds).
CREATE FUNCTION tollgate_quota_expire(max_age interval)
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
