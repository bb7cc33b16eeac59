-- One number per deployment that changes whenever what the public marketplace shows changes: an
-- agent published, withdrawn, suspended, or a listed agent's listed fields edited. Edge caches key
-- marketplace listings by it (the Workers Cache API), so a listing cached before a change is never
-- served after it. Triggers bump it in the transaction of the change itself, like the full-text
-- index's: the commit that withdraws an agent is the commit that retires every cached listing.
-- Changes that show nowhere (a private agent, an email, metadata, `last_auth_at`) leave it alone,
-- so the cache survives the constant traffic of authentication.
CREATE TABLE IF NOT EXISTS marketplace_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);

INSERT OR IGNORE INTO marketplace_version (id, version) VALUES (1, 0);

CREATE TRIGGER IF NOT EXISTS marketplace_version_agent_added
AFTER INSERT ON agents
WHEN NEW.visibility = 'public' AND NEW.status = 'active'
BEGIN
    UPDATE marketplace_version SET version = version + 1 WHERE id = 1;
END;

-- Listed before or after, and a column a listing shows (or whether it is listed) changed.
CREATE TRIGGER IF NOT EXISTS marketplace_version_agent_changed
AFTER UPDATE OF name, agent_type, version, capabilities, deployment_env, visibility, status ON agents
WHEN ((OLD.visibility = 'public' AND OLD.status = 'active')
      OR (NEW.visibility = 'public' AND NEW.status = 'active'))
  AND (OLD.name IS NOT NEW.name OR OLD.agent_type IS NOT NEW.agent_type
       OR OLD.version IS NOT NEW.version OR OLD.capabilities IS NOT NEW.capabilities
       OR OLD.deployment_env IS NOT NEW.deployment_env OR OLD.visibility IS NOT NEW.visibility
       OR OLD.status IS NOT NEW.status)
BEGIN
    UPDATE marketplace_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS marketplace_version_profile_changed
AFTER UPDATE OF description, tags, homepage_url, a2a_url, skills ON agent_profiles
WHEN (OLD.description IS NOT NEW.description OR OLD.tags IS NOT NEW.tags
      OR OLD.homepage_url IS NOT NEW.homepage_url OR OLD.a2a_url IS NOT NEW.a2a_url
      OR OLD.skills IS NOT NEW.skills)
  AND EXISTS (SELECT 1 FROM agents a
              WHERE a.id = NEW.agent_id AND a.visibility = 'public' AND a.status = 'active')
BEGIN
    UPDATE marketplace_version SET version = version + 1 WHERE id = 1;
END;
