-- Bulk Data export jobs (see internal/store/export.go for the meaning of each
-- column). Times are Unix microseconds.
CREATE TABLE export_jobs (
    id          TEXT PRIMARY KEY,
    owner       TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    request     TEXT    NOT NULL,
    params      BLOB    NOT NULL,
    tx_time     INTEGER NOT NULL,
    horizon     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    polled_at   INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX export_jobs_owner ON export_jobs (owner, status);
CREATE INDEX export_jobs_status ON export_jobs (status, expires_at);

-- One row per unit of work: its checkpoint and its lease.
CREATE TABLE export_tasks (
    job_id         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0,
    cursor_ts      INTEGER NOT NULL DEFAULT 0,
    cursor_seq     INTEGER NOT NULL DEFAULT 0,
    part           INTEGER NOT NULL DEFAULT 1,
    part_start_ts  INTEGER NOT NULL DEFAULT 0,
    part_start_seq INTEGER NOT NULL DEFAULT 0,
    part_bytes     INTEGER NOT NULL DEFAULT 0,
    part_count     INTEGER NOT NULL DEFAULT 0,
    part_raw       INTEGER NOT NULL DEFAULT 0,
    part_token     INTEGER NOT NULL DEFAULT 0,
    total          INTEGER NOT NULL DEFAULT 0,
    token          INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT    NOT NULL DEFAULT '',
    lease_until    INTEGER NOT NULL DEFAULT 0,
    state          BLOB    NOT NULL DEFAULT x'',
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
    task_seq   INTEGER NOT NULL,
    part       INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    raw_size   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
