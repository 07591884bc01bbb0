-- Keys, teams, the request ledger and its aggregates. STRICT so nothing but integers lands
-- in the counting columns: money is integer nano-dollars, never a float.

CREATE TABLE teams (
    id                TEXT    NOT NULL PRIMARY KEY,
    alias             TEXT,
    models            TEXT    NOT NULL DEFAULT '[]',  -- JSON array of names or globs
    rpm               INTEGER,
    tpm               INTEGER,
    max_parallel      INTEGER,
    budget_hard_nanos INTEGER,
    budget_soft_nanos INTEGER,
    budget_period     TEXT,                           -- NULL: no budget
    blocked           INTEGER NOT NULL DEFAULT 0,
    metadata          TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
    id                  TEXT    NOT NULL PRIMARY KEY,
    alias               TEXT,
    team_id             TEXT,
    secret_hash         TEXT    NOT NULL,
    previous_hash       TEXT,
    previous_expires_at INTEGER,
    models              TEXT    NOT NULL DEFAULT '[]',
    rpm                 INTEGER,
    tpm                 INTEGER,
    max_parallel        INTEGER,
    budget_hard_nanos   INTEGER,
    budget_soft_nanos   INTEGER,
    budget_period       TEXT,
    expires_at          INTEGER,
    blocked             INTEGER NOT NULL DEFAULT 0,
    metadata            TEXT    NOT NULL DEFAULT '{}',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX keys_team ON keys (team_id);

-- AUTOINCREMENT: ids are never reused after a purge, so a page cursor (before_id) stays
-- meaningful.
CREATE TABLE ledger (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms              INTEGER NOT NULL,
    request_id         TEXT    NOT NULL,
    key_id             TEXT,
    team_id            TEXT,
    endpoint           TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    served_model       TEXT,
    provider           TEXT,
    status             INTEGER NOT NULL,
    outcome            TEXT    NOT NULL,
    attempts           INTEGER NOT NULL,
    stream             INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    ttft_ms            INTEGER,
    overhead_us        INTEGER NOT NULL,
    error              TEXT,
    bodies             TEXT
) STRICT;

-- The request log pages by id, newest first, under at most one equality filter: each
-- filter has an (x, id) index so a page is a short backwards range scan, not a table scan.
CREATE INDEX ledger_ts     ON ledger (ts_ms);
CREATE INDEX ledger_key    ON ledger (key_id, id);
CREATE INDEX ledger_team   ON ledger (team_id, id);
CREATE INDEX ledger_model  ON ledger (model, id);
CREATE INDEX ledger_status ON ledger (status, id);

-- Reports read only this, never the ledger. '' stands for "none" so the key has no NULLs
-- (NULLs are distinct in a primary key and would defeat the upsert).
CREATE TABLE daily (
    day                TEXT    NOT NULL,              -- YYYY-MM-DD, UTC
    key_id             TEXT    NOT NULL,
    team_id            TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    PRIMARY KEY (day, key_id, team_id, model, provider)
) STRICT, WITHOUT ROWID;

CREATE INDEX daily_key  ON daily (key_id, day);
CREATE INDEX daily_team ON daily (team_id, day);

-- Spend per budget subject (key:ID, team:ID) per hour: a budget's period is a range of hours.
CREATE TABLE spend (
    subject    TEXT    NOT NULL,
    hour       INTEGER NOT NULL,                      -- Unix seconds of the hour's start
    cost_nanos INTEGER NOT NULL,
    PRIMARY KEY (subject, hour)
) STRICT, WITHOUT ROWID;
