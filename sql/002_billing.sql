-- 002_billing.sql - prices, exchange rates, promotions, costs on every
-- usage record, and closed months.
--
-- Money: prices are exact decimals per million tokens (numeric, at most 9
-- decimal places, so one nano-unit per million tokens is the finest step);
-- per-record amounts are integers in nano-units (1e-9 of the currency);
-- invoice lines are computed from summed tokens in numeric and rounded once
-- (see tollctl bill).

-- One row per (provider, model, currency, effective_from), list price when
-- tenant_id is NULL, a tenant's contract price otherwise (a contract price
-- beats the list price). provider is the gateway's [provider NAME], model the
-- upstream model. cached_input and cache_write default to input when NULL;
-- reasoning tokens are billed as output.
CREATE TABLE prices (
    id              bigserial PRIMARY KEY,
    provider        text NOT NULL,
    model           text NOT NULL,
    tenant_id       bigint REFERENCES tenants(id),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    input           numeric NOT NULL CHECK (input >= 0 AND input = round(input, 9)),
    cached_input    numeric CHECK (cached_input >= 0 AND cached_input = round(cached_input, 9)),
    cache_write     numeric CHECK (cache_write >= 0 AND cache_write = round(cache_write, 9)),
    output          numeric NOT NULL CHECK (output >= 0 AND output = round(output, 9)),
    effective_from  timestamptz NOT NULL,
    source          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (provider, model, tenant_id, currency, effective_from)
);
CREATE INDEX prices_lookup ON prices (provider, model, effective_from);

-- 1 base = rate quote, for a calendar month (the first day of it).
CREATE TABLE fx_rates (
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    base        text NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
    quote       text NOT NULL CHECK (quote ~ '^[A-Z]{3}$' AND quote <> base),
    rate        numeric NOT NULL CHECK (rate > 0),
    set_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, base, quote)
);

-- A promotion applies to a request whose time falls in [starts, ends)
-- (and before ended_at, when `tollctl promo end` cut it short), whose
-- tenant, provider and upstream model match its scope (NULL = any; the
-- model pattern is a shell glob such as 'glm-4*'). A free-token grant gives
-- each tenant in scope its own balance of free_tokens, consumed before any
-- paid token, earliest-ending grant first. A discount takes discount_bp
-- basis points (2000 = 20%) off the list price of the paid remainder; when
-- several apply, the largest wins.
CREATE TABLE promotions (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('free_tokens', 'discount')),
    tenant_id       bigint REFERENCES tenants(id),
    model_pattern   text,
    provider        text,
    free_tokens     bigint CHECK (free_tokens > 0),
    discount_bp     integer CHECK (discount_bp BETWEEN 1 AND 10000),
    starts          timestamptz NOT NULL,
    ends            timestamptz NOT NULL,
    ended_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends > starts),
    CHECK ((kind = 'free_tokens') = (free_tokens IS NOT NULL)),
    CHECK ((kind = 'discount') = (discount_bp IS NOT NULL))
);

-- What each tenant has used of each grant. Rows are created on first use
-- and locked (SELECT ... FOR UPDATE, in key order) by the writer that
-- prices a batch, so concurrent writers on any number of gateways never
-- take a balance below zero.
CREATE TABLE grant_balances (
    promotion_id    bigint NOT NULL REFERENCES promotions(id),
    tenant_id       bigint NOT NULL REFERENCES tenants(id),
    used            bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (promotion_id, tenant_id)
);

-- Costs, written with the record when it is ingested. Token classes:
-- input = prompt - cached - cache_write (uncached input), cached,
-- cache_write, output = completion (reasoning included). free_* are the
-- tokens of each class that grants covered (detail per grant in
-- usage_grants). list_nanos prices every token; free_nanos is the value of
-- the covered ones; discount_nanos what the discount took off the rest;
-- billed_nanos = list_nanos - free_nanos - discount_nanos, all in currency.
-- fx_rate and billed_tenant_nanos convert to the tenant's currency with the
-- month's rate, when one was set before ingestion.
ALTER TABLE usage_records
    ADD COLUMN ingested_at             timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN price_id                bigint,
    ADD COLUMN currency                text,
    ADD COLUMN unpriced                boolean NOT NULL DEFAULT false,
    ADD COLUMN free_input_tokens       bigint NOT NULL DEFAULT 0,
    ADD COLUMN free_cached_tokens      bigint NOT NULL DEFAULT 0,
    ADD COLUMN free_cache_write_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN free_output_tokens      bigint NOT NULL DEFAULT 0,
    ADD COLUMN discount_id             bigint,
    ADD COLUMN discount_bp             integer NOT NULL DEFAULT 0,
    ADD COLUMN list_nanos              bigint NOT NULL DEFAULT 0,
    ADD COLUMN free_nanos              bigint NOT NULL DEFAULT 0,
    ADD COLUMN discount_nanos          bigint NOT NULL DEFAULT 0,
    ADD COLUMN billed_nanos            bigint NOT NULL DEFAULT 0,
    ADD COLUMN fx_rate                 numeric,
    ADD COLUMN billed_tenant_nanos     bigint;
CREATE INDEX usage_records_ingested ON usage_records (ingested_at);

-- Which grant covered how many tokens of which class, per request.
CREATE TABLE usage_grants (
    request_id          text NOT NULL,
    ts                  timestamptz NOT NULL,
    promotion_id        bigint NOT NULL REFERENCES promotions(id),
    tenant_id           bigint NOT NULL,
    input_tokens        bigint NOT NULL DEFAULT 0,
    cached_tokens       bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, promotion_id)
);
CREATE INDEX usage_grants_promotion ON usage_grants (promotion_id, tenant_id);

-- Months frozen by `tollctl bill close`: each tenant's bill as it stood.
-- A record of a closed month ingested after closed_at is billed as an
-- adjustment on a later month's bill.
CREATE TABLE closed_months (
    month       date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    closed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    tenant_id   bigint NOT NULL REFERENCES tenants(id),
    month       date NOT NULL REFERENCES closed_months(month),
    closed_at   timestamptz NOT NULL,
    document    jsonb NOT NULL,   -- the bill as `tollctl bill --format json`
    PRIMARY KEY (tenant_id, month)
);

-- Digits of a currency's minor unit (ISO 4217); 2 unless listed.
CREATE FUNCTION tollgate_minor_digits(currency text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE currency
        WHEN 'JPY' THEN 0 WHEN 'KRW' THEN 0 WHEN 'VND' THEN 0
        WHEN 'CLP' THEN 0 WHEN 'ISK' THEN 0
        WHEN 'BHD' THEN 3 WHEN 'KWD' THEN 3 WHEN 'OMR' THEN 3
        WHEN 'JOD' THEN 3 WHEN 'TND' THEN 3
        ELSE 2 END
$$;

-- Promotions and prices reach running gateways like keys do.
CREATE TRIGGER promotions_notify AFTER INSERT OR UPDATE OR DELETE ON promotions
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();
CREATE TRIGGER prices_notify AFTER INSERT OR UPDATE OR DELETE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_keys();
