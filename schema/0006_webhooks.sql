-- Webhooks: subscriptions, the outbox of deliveries (written in the same transaction as the change
-- that caused each event, so nothing is lost when delivery or the process fails), leases that keep
-- two dispatchers from attempting the same delivery, and the log of every attempt.
-- Billing: the Stripe events already applied (a replay is a no-op) and each organization's Stripe ids.

CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id                          TEXT PRIMARY KEY,
    org_id                      TEXT NOT NULL REFERENCES orgs(id),
    url                         TEXT NOT NULL,
    -- Event types space-separated with a space at each end (' agent.created * '): one instr()
    -- finds a type or the wildcard in the fan-out.
    events                      TEXT NOT NULL,
    description                 TEXT,
    enabled                     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    disabled_reason             TEXT,
    disabled_at                 INTEGER,
    -- The HMAC key must be readable to sign with (Standard Webhooks is symmetric); the API shows it
    -- once. During a rotation the previous one signs too until it expires.
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    -- Start of the current run of failed attempts; a run of days disables the subscription.
    failing_since               INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_subscriptions_org ON webhook_subscriptions(org_id, created_at, id);

-- One event on its way to one subscription. event_id is the `webhook-id` header, the same for every
-- subscription and every attempt; payload is the body exactly as signed and sent.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    subscription_id   TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    org_id            TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- Attempts since the delivery was created or last retried by hand: the step of the schedule.
    round_attempts    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    -- The dispatcher attempting it, until when; an expired lease may be taken over.
    lease_token       TEXT,
    lease_until       INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_org_due ON webhook_deliveries(org_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries(subscription_id, created_at, event_id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_settled ON webhook_deliveries(updated_at) WHERE status <> 'pending';

CREATE TABLE IF NOT EXISTS webhook_attempts (
    subscription_id  TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    attempted_at     INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    PRIMARY KEY (subscription_id, event_id, attempt)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    org_id       TEXT,
    received_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS org_billing (
    org_id                  TEXT PRIMARY KEY REFERENCES orgs(id),
    stripe_customer_id      TEXT,
    stripe_subscription_id  TEXT,
    -- Stripe's `created` of the newest event applied: an older one arriving late changes nothing.
    last_event_created      INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS org_billing_subscription ON org_billing(stripe_subscription_id);
CREATE INDEX IF NOT EXISTS org_billing_customer ON org_billing(stripe_customer_id);
