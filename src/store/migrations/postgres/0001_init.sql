-- Keys, teams, the request ledger and its aggregates: the same shape as SQLite's. Every count
-- and every amount is BIGINT: money is integer nano-dollars, never a float.

CREATE TABLE teams (
    id                TEXT    NOT NULL PRIMARY KEY,
    alias             TEXT,
    models            TEXT    NOT NULL DEFAULT '[]',  -- JSON array of names or globs
    rpm               BIGINT,
    tpm               BIGINT,
    max_parallel      BIGINT,
    budget_hard_nanos BIGINT,
    budget_soft_nanos BIGINT,
    budget_period     TEXT,                           -- NULL: no budget
    blocked           BOOLEAN NOT NULL DEFAULT FALSE,
    metadata          TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);

CREATE TABLE keys (
    id                  TEXT    NOT NULL PRIMARY KEY,
    alias               TEXT,
    team_id             TEXT,
    secret_hash         TEXT    NOT NULL,
    previous_hash       TEXT,
    previous_expires_at BIGINT,
    models              TEXT    NOT NULL DEFAULT '[]',
    rpm                 BIGINT,
    tpm                 BIGINT,
    max_parallel        BIGINT,
    budget_hard_nanos   BIGINT,
    budget_soft_nanos   BIGINT,
    budget_period       TEXT,
    expires_at          BIGINT,
    blocked             BOOLEAN NOT NULL DEFAULT FALSE,
    metadata            TEXT    NOT NULL DEFAULT '{}',
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);

CREATE INDEX keys_team ON keys (team_id);

-- A sequence never hands out an id twice, so a page cursor (before_id) stays meaningful
-- after a purge.
CREATE TABLE ledger (
    id                 BIGSERIAL PRIMARY KEY,
    ts_ms              BIGINT  NOT NULL,
    request_id         TEXT    NOT NULL,
    key_id             TEXT,
    team_id            TEXT,
    endpoint           TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    served_model       TEXT,
    provider           TEXT,
    status             BIGINT  NOT NULL,
    outcome            TEXT    NOT NULL,
    attempts           BIGINT  NOT NULL,
    stream             BOOLEAN NOT NULL,
    prompt_tokens      BIGINT  NOT NULL,
    completion_tokens  BIGINT  NOT NULL,
    cached_tokens      BIGINT  NOT NULL,
    cache_write_tokens BIGINT  NOT NULL,
    reasoning_tokens   BIGINT  NOT NULL,
    cost_nanos         BIGINT  NOT NULL,
    latency_ms         BIGINT  NOT NULL,
    ttft_ms            BIGINT,
    overhead_us        BIGINT  NOT NULL,
    error              TEXT,
    bodies             TEXT
);

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
    requests           BIGINT  NOT NULL,
    errors             BIGINT  NOT NULL,
    prompt_tokens      BIGINT  NOT NULL,
    completion_tokens  BIGINT  NOT NULL,
    cached_tokens      BIGINT  NOT NULL,
    cache_write_tokens BIGINT  NOT NULL,
    reasoning_tokens   BIGINT  NOT NULL,
    cost_nanos         BIGINT  NOT NULL,
    PRIMARY KEY (day, key_id, team_id, model, provider)
);

CREATE INDEX daily_key  ON daily (key_id, day);
CREATE INDEX daily_team ON daily (team_id, day);

-- Spend per budget subject (key:ID, team:ID) per hour: a budget's period is a range of hours.
CREATE TABLE spend (
    subject    TEXT    NOT NULL,
    hour       BIGINT  NOT NULL,                      -- Unix seconds of the hour's start
    cost_nanos BIGINT  NOT NULL,
    PRIMARY KEY (subject, hour)
);
