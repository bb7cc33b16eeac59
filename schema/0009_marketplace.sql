-- What an agent publishes about itself (description, tags, links, A2A skills), one row per agent, and
-- the marketplace's full-text index over published agents. The index holds exactly the agents that
-- are public and active: triggers keep it in sync inside the transaction of every agent change, so a
-- withdrawn or suspended agent leaves search in the same commit (natively and over Hrana alike).

-- `doc` is the index's rowid: an INTEGER PRIMARY KEY survives VACUUM (an implicit rowid may not), and
-- grows with every new agent, which lets a relevance-ordered paging session leave out agents added
-- after its first page.
CREATE TABLE IF NOT EXISTS agent_profiles (
    doc           INTEGER PRIMARY KEY,
    agent_id      TEXT NOT NULL UNIQUE REFERENCES agents(id),
    description   TEXT NOT NULL DEFAULT '',
    tags          TEXT NOT NULL DEFAULT '[]',
    homepage_url  TEXT,
    a2a_url       TEXT,
    skills        TEXT NOT NULL DEFAULT '[]'
);

-- Column order is the bm25 weight order used by the search (name weighs most). `prefix` keeps the
-- prefix query of the last term an index lookup rather than a scan of the vocabulary.
CREATE VIRTUAL TABLE IF NOT EXISTS marketplace_search USING fts5(
    name, description, skills, tags, capabilities, agent_type,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER IF NOT EXISTS agent_profiles_for_every_agent
AFTER INSERT ON agents
BEGIN
    INSERT OR IGNORE INTO agent_profiles (agent_id) VALUES (NEW.id);
END;

-- One trigger keeps an agent's document: it re-indexes the profile's agent on every profile update.
-- A change of the agent, or a new profile, touches the profile row (`SET doc = doc`) to run it.
CREATE TRIGGER IF NOT EXISTS marketplace_search_profile_changed
AFTER UPDATE ON agent_profiles
BEGIN
    DELETE FROM marketplace_search WHERE rowid = NEW.doc;
    INSERT INTO marketplace_search (rowid, name, description, skills, tags, capabilities, agent_type)
    SELECT p.doc, a.name, p.description,
           (SELECT group_concat(value, ' ') FROM json_tree(p.skills) WHERE type = 'text'),
           (SELECT group_concat(value, ' ') FROM json_each(p.tags)),
           (SELECT group_concat(value, ' ') FROM json_each(a.capabilities)),
           a.agent_type
    FROM agents a JOIN agent_profiles p ON p.agent_id = a.id
    WHERE p.doc = NEW.doc AND a.visibility = 'public' AND a.status = 'active';
END;

CREATE TRIGGER IF NOT EXISTS marketplace_search_profile_added
AFTER INSERT ON agent_profiles
BEGIN
    UPDATE agent_profiles SET doc = doc WHERE doc = NEW.doc;
END;

CREATE TRIGGER IF NOT EXISTS marketplace_search_agent_changed
AFTER UPDATE OF name, agent_type, capabilities, visibility, status ON agents
BEGIN
    UPDATE agent_profiles SET doc = doc WHERE agent_id = NEW.id;
END;

-- Agents registered before this migration get an empty profile, and the published ones enter the
-- index through the trigger above.
INSERT OR IGNORE INTO agent_profiles (agent_id) SELECT id FROM agents ORDER BY created_at, id;
