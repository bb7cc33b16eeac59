-- Each Stripe subscription an organization holds: its tier is the highest its active ones buy, so
-- ending a superseded subscription changes nothing, and the organization a subscription was
-- recorded for at checkout stays its organization.
CREATE TABLE IF NOT EXISTS org_subscriptions (
    subscription_id     TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES orgs(id),
    customer_id         TEXT,
    tier                TEXT NOT NULL,
    -- `Tier::rank`: the highest active one is the organization's tier.
    tier_rank           INTEGER NOT NULL,
    active              INTEGER NOT NULL,
    -- Stripe's `created` of the newest event applied to this subscription: an older one arriving
    -- late changes nothing.
    last_event_created  INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS org_subscriptions_org ON org_subscriptions(org_id, active, tier_rank);
CREATE INDEX IF NOT EXISTS org_subscriptions_customer ON org_subscriptions(customer_id);

-- The one subscription recorded per organization so far, with the tier it holds now.
INSERT OR IGNORE INTO org_subscriptions (subscription_id, org_id, customer_id, tier, tier_rank,
    active, last_event_created, updated_at)
SELECT b.stripe_subscription_id, b.org_id, b.stripe_customer_id, o.tier,
       CASE o.tier WHEN 'enterprise' THEN 2 WHEN 'pro' THEN 1 ELSE 0 END,
       o.tier <> 'free', b.last_event_created, b.updated_at
FROM org_billing b JOIN orgs o ON o.id = b.org_id
WHERE b.stripe_subscription_id IS NOT NULL;
