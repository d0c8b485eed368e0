-- 011_console.sql - what the web console reads: tenants' display names,
-- a daily roll-up of the ledger, when each key was last used, and the
-- audit trail of changes to tenants, keys, quotas, rate limits and
-- promotions (doc/console.md).
--
-- usage_daily is the ledger summed per tenant, day in the tenant's time
-- zone (the calendar of its bills and quotas), provider, requested model,
-- price currency and refusal (a refused request's provider and model are
-- left out: ''). Principle: it is kept by statement-level
-- triggers on usage_records, in the transaction that writes the records,
-- from the statement's transition tables, so it holds exactly what the
-- ledger holds, whatever writes it:
--   - an INSERT adds what it inserted. Rows that ON CONFLICT DO NOTHING
--     skipped are not in the transition table, so a replayed batch adds
--     nothing; a rolled-back batch takes its sums with it.
--   - an UPDATE takes away the old rows and adds the new ones; a DELETE
--     takes its rows away (nothing in tollgate updates or deletes records
--     today: pricing happens before the insert, bill close and imports
--     only read or insert; this covers hand corrections). A group left
--     with no request is removed; last_ts, the latest record a group
--     was given, does not move back.
--   - a TRUNCATE of usage_records empties the roll-up.
--   - a tenant whose tz changes has its days rebuilt from the ledger.
-- Each statement's groups are upserted in key order, so writers on any
-- number of gateways lock the rows they share in the same order and
-- never deadlock. Sums are numeric: exact, and no sum can overflow and
-- fail the ledger's insert.
--
-- What the triggers do not see: statement triggers on a partitioned table
-- fire only for statements on the parent. Writing to a month partition
-- directly, or detaching or dropping one, leaves the roll-up as it was;
-- `SELECT tollgate_usage_daily_rebuild()` recomputes it from the ledger.
--
-- api_key_last_used is kept by the same trigger (the latest record of
-- each key, only ever forward), apart from api_keys: a write there would
-- wake every gateway's key reload (the tollgate_keys NOTIFY).
--
-- audit_log gets a row for each row inserted, changed or deleted in the
-- five policy tables, with the row before and after (api_keys without its
-- hash). The actor and action are the session's tollgate.actor and
-- tollgate.action, which tollctl sets (the console runs tollctl), else
-- the database user and the statement's kind. The gateway writes none of
-- these tables, so nothing it does lands here.

-- A display name is any script but no control characters (C0, C1), line
-- or paragraph separators, or bidirectional overrides and isolates, which
-- could make one name show as another.
ALTER TABLE tenants
    ADD COLUMN display_name text
        CONSTRAINT tenants_display_name_check
        CHECK (length(display_name) BETWEEN 1 AND 200
               AND display_name !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]');

-- '' stands for NULL in the key columns, so that they make a primary key.
CREATE TABLE usage_daily (
    tenant_id           bigint NOT NULL,
    day                 date NOT NULL,
    provider            text NOT NULL,
    model               text NOT NULL,   -- the requested model
    currency            text NOT NULL,   -- of the price; '' unpriced
    refusal             text NOT NULL,   -- '' when not refused
    requests            bigint NOT NULL,
    errors              bigint NOT NULL, -- status >= 400
    estimated_requests  bigint NOT NULL,
    prompt_tokens       numeric NOT NULL,
    completion_tokens   numeric NOT NULL,
    cached_tokens       numeric NOT NULL,
    cache_write_tokens  numeric NOT NULL,
    reasoning_tokens    numeric NOT NULL,
    estimated_tokens    numeric NOT NULL, -- prompt + completion, estimated
    list_nanos          numeric NOT NULL,
    free_nanos          numeric NOT NULL,
    discount_nanos      numeric NOT NULL,
    billed_nanos        numeric NOT NULL,
    billed_tenant_nanos numeric NOT NULL, -- of those converted
    unconverted         bigint NOT NULL,  -- priced, no rate converted it
    unpriced            bigint NOT NULL,
    last_ts             timestamptz NOT NULL, -- the latest record added
    PRIMARY KEY (tenant_id, day, provider, model, currency, refusal)
) WITH (fillfactor = 50);  -- room for HOT updates: every batch adds to rows
CREATE INDEX usage_daily_day ON usage_daily (day);

CREATE TABLE api_key_last_used (
    key_id       bigint PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
    last_used_at timestamptz NOT NULL
);

-- The statement adding the records of src to usage_daily: src is a FROM
-- item of usage_records rows preceded by a column sign, 1 to add the row
-- and -1 to take it away.
CREATE FUNCTION tollgate_usage_daily_sql(src text) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
    INSERT INTO usage_daily AS d (tenant_id, day, provider, model, currency,
        refusal, requests, errors, estimated_requests, prompt_tokens,
        completion_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens, estimated_tokens, list_nanos, free_nanos,
        discount_nanos, billed_nanos, billed_tenant_nanos, unconverted,
        unpriced, last_ts)
    SELECT s.tenant_id, (s.ts AT TIME ZONE coalesce(t.tz, 'UTC'))::date,
        -- A refusal counts without its provider and model: refusals are
        -- few, but keyed by model they would be most of the rows.
        CASE WHEN s.refusal IS NULL THEN coalesce(s.provider, '') ELSE '' END,
        CASE WHEN s.refusal IS NULL THEN coalesce(s.requested_model, '')
             ELSE '' END,
        coalesce(s.currency, ''), coalesce(s.refusal, ''),
        sum(s.sign), sum(s.sign * (s.status >= 400)::int),
        sum(s.sign * (s.usage_source = 'estimated')::int),
        sum(s.sign * s.prompt_tokens), sum(s.sign * s.completion_tokens),
        sum(s.sign * s.cached_tokens), sum(s.sign * s.cache_write_tokens),
        sum(s.sign * s.reasoning_tokens),
        coalesce(sum(s.sign * (s.prompt_tokens::numeric + s.completion_tokens))
                 FILTER (WHERE s.usage_source = 'estimated'), 0),
        sum(s.sign * s.list_nanos), sum(s.sign * s.free_nanos),
        sum(s.sign * s.discount_nanos), sum(s.sign * s.billed_nanos),
        coalesce(sum(s.sign * s.billed_tenant_nanos), 0),
        sum(s.sign * (s.currency IS NOT NULL
                      AND s.billed_tenant_nanos IS NULL)::int),
        sum(s.sign * s.unpriced::int),
        coalesce(max(s.ts) FILTER (WHERE s.sign > 0), max(s.ts))
    FROM %s s LEFT JOIN tenants t ON t.id = s.tenant_id
    WHERE s.tenant_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, day, provider, model, currency, refusal)
    DO UPDATE SET requests = d.requests + EXCLUDED.requests,
        errors = d.errors + EXCLUDED.errors,
        estimated_requests = d.estimated_requests + EXCLUDED.estimated_requests,
        prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
        cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
        cache_write_tokens = d.cache_write_tokens + EXCLUDED.cache_write_tokens,
        reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
        estimated_tokens = d.estimated_tokens + EXCLUDED.estimated_tokens,
        list_nanos = d.list_nanos + EXCLUDED.list_nanos,
        free_nanos = d.free_nanos + EXCLUDED.free_nanos,
        discount_nanos = d.discount_nanos + EXCLUDED.discount_nanos,
        billed_nanos = d.billed_nanos + EXCLUDED.billed_nanos,
        billed_tenant_nanos = d.billed_tenant_nanos + EXCLUDED.billed_tenant_nanos,
        unconverted = d.unconverted + EXCLUDED.unconverted,
        unpriced = d.unpriced + EXCLUDED.unpriced,
        last_ts = greatest(d.last_ts, EXCLUDED.last_ts)$q$, src)
$f$;

-- Recomputes usage_daily from the ledger, for one tenant or (NULL) all.
-- Writers of the ledger wait meanwhile (their gateways journal).
CREATE FUNCTION tollgate_usage_daily_rebuild(p_tenant bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE usage_records IN SHARE MODE;
    DELETE FROM usage_daily WHERE p_tenant IS NULL OR tenant_id = p_tenant;
    EXECUTE tollgate_usage_daily_sql('(SELECT 1 AS sign, u.* FROM usage_records u'
                                     ' WHERE $1::bigint IS NULL OR u.tenant_id = $1)')
        USING p_tenant;
END $$;

-- The roll-up's trigger, for every statement on usage_records. The
-- ledger's INSERTs run the statement written into the function here, which
-- PL/pgSQL plans once per session (EXECUTE would plan it for every batch,
-- about 0.7 ms); the rare others are EXECUTEd. A batch of 500 records
-- over a few dozen groups costs the trigger about 3 us a record, a third
-- of it the time zone conversion.
DO $do$
BEGIN
    EXECUTE format($fn$
CREATE FUNCTION tollgate_usage_rollup() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM usage_daily;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT FROM usage_new) THEN
            RETURN NULL;  -- ON CONFLICT skipped every row
        END IF;
        %s;
    ELSE
        EXECUTE tollgate_usage_daily_sql(CASE TG_OP
            WHEN 'DELETE' THEN '(SELECT -1 AS sign, * FROM usage_old)'
            ELSE '(SELECT -1 AS sign, * FROM usage_old'
                 ' UNION ALL SELECT 1, * FROM usage_new)' END);
        DELETE FROM usage_daily d
        WHERE d.tenant_id IN (SELECT tenant_id FROM usage_old)
          AND d.requests <= 0;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO api_key_last_used AS l (key_id, last_used_at)
        SELECT n.key_id, max(n.ts) FROM usage_new n
        WHERE n.key_id IS NOT NULL
          AND EXISTS (SELECT FROM api_keys k WHERE k.id = n.key_id)
        GROUP BY n.key_id
        ORDER BY n.key_id
        ON CONFLICT (key_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
        WHERE l.last_used_at < EXCLUDED.last_used_at;
    END IF;
    RETURN NULL;
END $body$
$fn$, tollgate_usage_daily_sql('(SELECT 1 AS sign, * FROM usage_new)'));
END $do$;

-- The trigger takes SHARE ROW EXCLUSIVE on usage_records: records in
-- flight are committed before the backfill reads the ledger, and later
-- ones wait for this migration and then go through the trigger.
CREATE TRIGGER usage_records_rollup_insert AFTER INSERT ON usage_records
    REFERENCING NEW TABLE AS usage_new
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_usage_rollup();
CREATE TRIGGER usage_records_rollup_update AFTER UPDATE ON usage_records
    REFERENCING OLD TABLE AS usage_old NEW TABLE AS usage_new
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_usage_rollup();
CREATE TRIGGER usage_records_rollup_delete AFTER DELETE ON usage_records
    REFERENCING OLD TABLE AS usage_old
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_usage_rollup();
CREATE TRIGGER usage_records_rollup_truncate AFTER TRUNCATE ON usage_records
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_usage_rollup();

-- A tenant's days move with its time zone.
CREATE FUNCTION tollgate_usage_daily_retz() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tollgate_usage_daily_rebuild(NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_tz_rollup AFTER UPDATE OF tz ON tenants
    FOR EACH ROW WHEN (OLD.tz IS DISTINCT FROM NEW.tz)
    EXECUTE FUNCTION tollgate_usage_daily_retz();

SELECT tollgate_usage_daily_rebuild();

INSERT INTO api_key_last_used (key_id, last_used_at)
SELECT u.key_id, max(u.ts) FROM usage_records u
WHERE u.key_id IN (SELECT id FROM api_keys)
GROUP BY u.key_id;

-- One row per changed row of an audited table. object is the table,
-- object_id the row's id, tenant_id the tenant it belongs to (NULL for a
-- promotion of every tenant).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    object      text NOT NULL,
    object_id   bigint,
    tenant_id   bigint,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

-- The audit trigger; its arguments name columns never written to the log.
-- An UPDATE that changes nothing else is not logged.
-- A row as the audit keeps it: numbers that JavaScript (the console)
-- would not hold exactly, fractions and integers past 2^53, become their
-- decimal text.
CREATE FUNCTION tollgate_audit_exact(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_object_agg(key, CASE
        WHEN jsonb_typeof(value) = 'number'
             AND (value::text ~ '[.eE]'
                  OR abs(value::text::numeric) > 9007199254740991)
        THEN to_jsonb(value::text) ELSE value END)
    FROM jsonb_each(j)
$$;

CREATE FUNCTION tollgate_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    b   jsonb;
    a   jsonb;
    r   jsonb;
    tz  text := current_setting('TimeZone');
BEGIN
    -- Times in the rows in UTC, whatever zone the session reads in.
    PERFORM set_config('TimeZone', 'UTC', true);
    IF TG_OP <> 'INSERT' THEN
        b := tollgate_audit_exact(to_jsonb(OLD) - coalesce(TG_ARGV, '{}'));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        a := tollgate_audit_exact(to_jsonb(NEW) - coalesce(TG_ARGV, '{}'));
    END IF;
    PERFORM set_config('TimeZone', tz, true);
    IF b = a THEN
        RETURN NULL;
    END IF;
    r := coalesce(a, b);
    INSERT INTO audit_log (actor, action, object, object_id, tenant_id,
                           before, after)
    VALUES (coalesce(nullif(current_setting('tollgate.actor', true), ''),
                     session_user),
            coalesce(nullif(current_setting('tollgate.action', true), ''),
                     lower(TG_OP)),
            TG_TABLE_NAME, (r ->> 'id')::bigint,
            (CASE TG_TABLE_NAME WHEN 'tenants' THEN r ->> 'id'
                                ELSE r ->> 'tenant_id' END)::bigint,
            b, a);
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_audit AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit();
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit('hash');
CREATE TRIGGER quotas_audit AFTER INSERT OR UPDATE OR DELETE ON quotas
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit();
CREATE TRIGGER rate_limits_audit AFTER INSERT OR UPDATE OR DELETE ON rate_limits
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit();
CREATE TRIGGER promotions_audit AFTER INSERT OR UPDATE OR DELETE ON promotions
    FOR EACH ROW EXECUTE FUNCTION tollgate_audit();
