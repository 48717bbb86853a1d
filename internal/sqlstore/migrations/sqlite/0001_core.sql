-- Resources: one row per logical resource, pointing at its current version.
-- rid is the stable key that search index tables reference.
CREATE TABLE resources (
    rid     INTEGER PRIMARY KEY,
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    vid     INTEGER NOT NULL,
    ts      INTEGER NOT NULL,            -- lastUpdated, Unix microseconds
    deleted INTEGER NOT NULL DEFAULT 0,
    seq     INTEGER NOT NULL,            -- history.seq of the current version
    UNIQUE (type, id)
);
CREATE INDEX resources_type_ts ON resources (type, ts);

-- Every version ever written, in write order. The body is stored once, here,
-- as the exact JSON served to clients; NULL for deletions.
CREATE TABLE history (
    seq           INTEGER PRIMARY KEY,
    rid           INTEGER NOT NULL,
    type          TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    vid           INTEGER NOT NULL,
    ts            INTEGER NOT NULL,
    method        TEXT    NOT NULL,
    body          BLOB,
    superseded_ts INTEGER,               -- ts of the next version; NULL while current
    UNIQUE (rid, vid)
);
CREATE INDEX history_type_ts ON history (type, ts, seq);
CREATE INDEX history_ts ON history (ts, seq);

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    body        BLOB    NOT NULL,
    secret_hash TEXT    NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL
);

CREATE TABLE access_policies (
    id         TEXT PRIMARY KEY,
    body       BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE config_revision (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL
);
INSERT INTO config_revision (id, rev) VALUES (1, 0);

CREATE TABLE jti_replay (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX jti_replay_expires ON jti_replay (expires_at);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT    NOT NULL,
    private_key  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    sign_until   INTEGER NOT NULL,
    verify_until INTEGER NOT NULL
);
