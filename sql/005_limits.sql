-- 005_limits.sql - quotas and rate limits.
--
-- A quota caps a period's tokens and/or spend for a tenant, or for one of
-- its keys, optionally for the models matching a glob (on the model the
-- client asked for). Periods follow the calendar in the tenant's time zone:
-- day, week (from Monday), month, or total (no reset). spend_limit is in
-- the tenant's billing currency, after promotions. A hard quota refuses
-- what would not fit; a soft one serves, warns and counts.
CREATE TABLE quotas (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id),
    key_id          bigint REFERENCES api_keys(id),
    model_pattern   text,
    period          text NOT NULL CHECK (period IN ('day', 'week', 'month', 'total')),
    token_limit     bigint CHECK (token_limit > 0),
    spend_limit     numeric CHECK (spend_limit > 0),
    hard            boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (token_limit IS NOT NULL OR spend_limit IS NOT NULL),
    UNIQUE NULLS NOT DISTINCT (tenant_id, key_id, model_pattern, period)
);

-- Requests per minute, tokens per minute and concurrent requests, for a
-- tenant (key_id NULL) or one of its keys. NULL = no limit of that kind.
CREATE TABLE rate_limits (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id),
    key_id          bigint REFERENCES api_keys(id),
    rpm             integer CHECK (rpm > 0),
    tpm             bigint CHECK (tpm > 0),
    concurrency     integer CHECK (concurrency > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (rpm IS NOT NULL OR tpm IS NOT NULL OR concurrency IS NOT NULL),
    UNIQUE NULLS NOT DISTINCT (tenant_id, key_id)
);

-- Running gateways reload their policy when either changes.
CREATE TRIGGER quotas_notify AFTER INSERT OR UPDATE OR DELETE ON quotas
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();
CREATE TRIGGER rate_limits_notify AFTER INSERT OR UPDATE OR DELETE ON rate_limits
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();

-- Why a request was refused, when the gateway refused it (rate_limit,
-- quota:ID, ...): the ledger keeps refusals with their reason.
ALTER TABLE usage_records ADD COLUMN refusal text;
