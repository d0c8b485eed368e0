-- 001_init.sql - tenants, API keys and the usage ledger.
--
-- Applied by `tollctl db migrate`, which records each file's number in
-- schema_migrations and runs it in one transaction.

CREATE TABLE tenants (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    currency    text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    tz          text NOT NULL DEFAULT 'UTC',
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the key's HMAC-SHA256 (server secret) is stored; the key itself is
-- shown once by `tollctl key issue`. prefix is the first characters, for
-- telling keys apart in listings.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id),
    name        text,
    prefix      text NOT NULL,
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    models      text[],              -- allowed model patterns; NULL = any
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Running gateways LISTEN on tollgate_keys and reload their key cache when
-- a tenant or key changes.
CREATE FUNCTION tollgate_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_keys', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();

-- The usage ledger: one row per request that reached admission, accepted or
-- refused. Partitioned by month of ts, so a month can be billed, archived or
-- dropped as one table. The primary key must contain the partition key, so
-- it is (request_id, ts); a replayed record carries the same ts as the first
-- write, so ON CONFLICT DO NOTHING keeps every request exactly once.
CREATE TABLE usage_records (
    request_id          text NOT NULL,
    ts                  timestamptz NOT NULL,
    tenant_id           bigint,              -- NULL when no valid key was given
    key_id              bigint,
    endpoint            text NOT NULL,
    requested_model     text,
    provider            text,
    upstream_model      text,
    streamed            boolean NOT NULL DEFAULT false,
    status              integer NOT NULL,
    prompt_tokens       bigint NOT NULL DEFAULT 0,
    completion_tokens   bigint NOT NULL DEFAULT 0,
    cached_tokens       bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    reasoning_tokens    bigint NOT NULL DEFAULT 0,
    usage_source        text NOT NULL CHECK (usage_source IN ('reported', 'estimated', 'none')),
    client_aborted      boolean NOT NULL DEFAULT false,
    latency_ms          integer NOT NULL DEFAULT 0,
    ttfb_ms             integer,
    error               text,                -- the gateway's reason, for refusals and failures
    PRIMARY KEY (request_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX usage_records_tenant_ts ON usage_records (tenant_id, ts);

-- Creates the month partition holding ts, if missing. Called by the writer
-- for each month it is about to insert into, and by `tollctl db migrate`.
CREATE FUNCTION tollgate_usage_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m     date := date_trunc('month', at AT TIME ZONE 'UTC')::date;
    part  text := format('usage_records_%s', to_char(m, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF usage_records
                 FOR VALUES FROM (%L) TO (%L)',
            part, (m::timestamp AT TIME ZONE 'UTC'),
            ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    END IF;
END $$;

SELECT tollgate_usage_partition(now());
SELECT tollgate_usage_partition(now() + interval '1 month');
