"""Seeds published agents straight into a stopped server's database (bench/marketplace.sh).

Through the API, 100,000 registrations take far longer than the measurement on this machine; rows
written here go through the same tables and triggers (the full-text index is filled by the schema's
own triggers), so what the server searches is what the API would have produced. Deterministic:
the same N gives the same corpus.

    python3 bench/marketplace_seed.py DB ORG_ID N
"""

import json
import random
import sqlite3
import sys
import uuid

DOMAIN_WORDS = (
    "translate translation documents weather forecast search web code review calendar schedule "
    "meetings email summarize summary invoices billing support tickets triage sales leads crm "
    "research papers citations legal contracts compliance security scanning vulnerabilities data "
    "analysis charts sql database monitoring alerts incidents deploy kubernetes cloud costs travel "
    "booking flights hotels recipes nutrition fitness music playlists images vision ocr audio "
    "transcription speech voice chat assistant agent planner writer editor tutor math physics"
).split()
TYPES = ["assistant", "nlp", "vision", "search", "coder", "planner", "analyst", "support"]
CAPABILITIES = ["web:search", "docs:read", "docs:write", "mail:send", "calendar:write",
                "code:review", "tickets:write", "data:read"]
TAGS = ["nlp", "i18n", "search", "productivity", "devtools", "finance", "support", "vision",
        "audio", "data", "security", "travel", "health", "education", "sales", "legal"]


def main():
    db_path, org_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(22)
    # A Zipf-like vocabulary: a few words are in many descriptions, most in few.
    vocabulary = DOMAIN_WORDS + [f"term{i}" for i in range(5000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    db = sqlite3.connect(db_path)
    has_profiles = db.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'agent_profiles'").fetchone() is not None
    base_ms = 1_700_000_000_000
    agents, profiles = [], []
    for i in range(n):
        agent_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        words = rng.choices(vocabulary, weights, k=rng.randint(8, 30))
        name = f"{rng.choice(DOMAIN_WORDS).title()} {rng.choice(DOMAIN_WORDS).title()} {i}"
        capabilities = rng.sample(CAPABILITIES, rng.randint(0, 3))
        agents.append((agent_id, org_id, name, rng.choice(TYPES), "1.0.0",
                       json.dumps(capabilities), rng.choice(["development", "staging", "production"]),
                       base_ms + i, base_ms + i))
        skills = [{"id": f"s{j}", "name": rng.choice(DOMAIN_WORDS).title(),
                   "description": " ".join(rng.choices(vocabulary, weights, k=6)), "tags": []}
                  for j in range(rng.randint(0, 2))]
        profiles.append((" ".join(words).capitalize() + ".", json.dumps(rng.sample(TAGS, rng.randint(0, 3))),
                         json.dumps(skills), agent_id))
    with db:
        db.executemany(
            "INSERT INTO agents (id, org_id, name, agent_type, version, capabilities, deployment_env, "
            "visibility, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'public', 'active', ?, ?)",
            agents)
        if has_profiles:
            db.executemany(
                "UPDATE agent_profiles SET description = ?, tags = ?, skills = ? WHERE agent_id = ?",
                profiles)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"seeded {n} published agents (profiles: {has_profiles})")


if __name__ == "__main__":
    main()
