-- See migrations/sqlite/0003_export.sql; the shapes are the same, in PostgreSQL types.
CREATE TABLE export_jobs (
    id          TEXT PRIMARY KEY,
    owner       TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    request     TEXT    NOT NULL,
    params      BYTEA   NOT NULL,
    tx_time     BIGINT  NOT NULL,
    horizon     BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL DEFAULT 0,
    expires_at  BIGINT  NOT NULL DEFAULT 0,
    polled_at   BIGINT  NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX export_jobs_owner ON export_jobs (owner, status);
CREATE INDEX export_jobs_status ON export_jobs (status, expires_at);

-- One row per unit of work: its checkpoint and its lease.
CREATE TABLE export_tasks (
    job_id         TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    done           BOOLEAN NOT NULL DEFAULT FALSE,
    cursor_ts      BIGINT  NOT NULL DEFAULT 0,
    cursor_seq     BIGINT  NOT NULL DEFAULT 0,
    part           BIGINT  NOT NULL DEFAULT 1,
    part_start_ts  BIGINT  NOT NULL DEFAULT 0,
    part_start_seq BIGINT  NOT NULL DEFAULT 0,
    part_bytes     BIGINT  NOT NULL DEFAULT 0,
    part_count     BIGINT  NOT NULL DEFAULT 0,
    part_raw       BIGINT  NOT NULL DEFAULT 0,
    part_token     BIGINT  NOT NULL DEFAULT 0,
    total          BIGINT  NOT NULL DEFAULT 0,
    token          BIGINT  NOT NULL DEFAULT 0,
    lease_owner    TEXT    NOT NULL DEFAULT '',
    lease_until    BIGINT  NOT NULL DEFAULT 0,
    state          BYTEA   NOT NULL DEFAULT ''::bytea,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX export_tasks_runnable ON export_tasks (done, lease_until);

-- Finished files, listed by the manifest.
CREATE TABLE export_files (
    job_id     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    storage_key TEXT   NOT NULL,
    task_seq   BIGINT  NOT NULL,
    part       BIGINT  NOT NULL,
    count      BIGINT  NOT NULL,
    size       BIGINT  NOT NULL,
    raw_size   BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (job_id, name)
);
