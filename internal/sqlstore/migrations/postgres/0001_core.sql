-- See migrations/sqlite/0001_core.sql for the meaning of each column; the
-- shapes are the same, in PostgreSQL types.
CREATE TABLE resources (
    rid     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    vid     BIGINT  NOT NULL,
    ts      BIGINT  NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    seq     BIGINT  NOT NULL,
    UNIQUE (type, id)
);
CREATE INDEX resources_type_ts ON resources (type, ts);

CREATE TABLE history (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid           BIGINT NOT NULL,
    type          TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    vid           BIGINT NOT NULL,
    ts            BIGINT NOT NULL,
    method        TEXT   NOT NULL,
    body          BYTEA,
    superseded_ts BIGINT,
    UNIQUE (rid, vid)
);
CREATE INDEX history_type_ts ON history (type, ts, seq);
CREATE INDEX history_ts ON history (ts, seq);

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    body        BYTEA  NOT NULL,
    secret_hash TEXT   NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL
);

CREATE TABLE access_policies (
    id         TEXT PRIMARY KEY,
    body       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE config_revision (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev BIGINT NOT NULL
);
INSERT INTO config_revision (id, rev) VALUES (1, 0);

CREATE TABLE jti_replay (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX jti_replay_expires ON jti_replay (expires_at);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT   NOT NULL,
    private_key  BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    sign_until   BIGINT NOT NULL,
    verify_until BIGINT NOT NULL
);
