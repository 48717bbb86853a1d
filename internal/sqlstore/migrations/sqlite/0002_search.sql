-- Search index (R4 search.html). Every live resource has its index rows here,
-- written in the transaction that writes the version (index.go); a deletion
-- removes them, so index rows never point at deleted resources and searches
-- need not look at resources.deleted. Rows carry the resource's rid and a
-- parameter id (pid), which names one parameter of one resource type: a
-- search on Observation.code reads exactly the rows of that pair.

-- On SQLite each index table is WITHOUT ROWID, clustered on its search key:
-- one B-tree fewer per row than a rowid table with a key index, which is most
-- of the cost of indexing at write time. Rows of one resource and parameter
-- are distinct (extraction drops duplicates), so the keys are unique.

-- search_param gives every (resource type, parameter code) a small stable id.
-- New parameters get new ids; existing ids never change.
CREATE TABLE search_param (
    pid  INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    code TEXT NOT NULL,
    UNIQUE (type, code)
);

-- search_index_state records, per resource type, the parameter set its rows
-- were built with (fingerprint) and how far a rebuild got (reindex.go).
CREATE TABLE search_index_state (
    type        TEXT PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    complete    INTEGER NOT NULL,
    cursor_rid  INTEGER NOT NULL DEFAULT 0
);

-- string: norm is lower case without accents (default and :contains), exact
-- the original (:exact). Prefix search is a range on (pid, norm).
CREATE TABLE idx_string (
    pid   INTEGER NOT NULL,
    rid   INTEGER NOT NULL,
    norm  TEXT    NOT NULL,
    exact TEXT    NOT NULL,
    PRIMARY KEY (pid, norm, rid, exact)
) WITHOUT ROWID;
CREATE INDEX idx_string_rid ON idx_string (rid, pid);

-- token: (pid, code, rid) first so that an equality on the code yields rids
-- in order (keyset pages without a sort); system is covered for system|code.
CREATE TABLE idx_token (
    pid    INTEGER NOT NULL,
    rid    INTEGER NOT NULL,
    system TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    text   TEXT    NOT NULL,
    PRIMARY KEY (pid, code, rid, system, text)
) WITHOUT ROWID;
CREATE INDEX idx_token_rid ON idx_token (rid, pid);

-- date: the closed range [low, high] in UTC microseconds. lt, le, eq, sa
-- and ap bound low; gt, ge and eb bound high.
CREATE TABLE idx_date (
    pid  INTEGER NOT NULL,
    rid  INTEGER NOT NULL,
    low  INTEGER NOT NULL,
    high INTEGER NOT NULL,
    PRIMARY KEY (pid, low, high, rid)
) WITHOUT ROWID;
CREATE INDEX idx_date_high ON idx_date (pid, high, low, rid);
CREATE INDEX idx_date_rid ON idx_date (rid, pid);

-- number: the value and the range of its precision.
CREATE TABLE idx_number (
    pid   INTEGER NOT NULL,
    rid   INTEGER NOT NULL,
    value REAL    NOT NULL,
    low   REAL    NOT NULL,
    high  REAL    NOT NULL,
    PRIMARY KEY (pid, value, rid, low, high)
) WITHOUT ROWID;
CREATE INDEX idx_number_rid ON idx_number (rid, pid);

-- quantity: value with its coded unit, and the same in canonical UCUM units
-- (ccode empty when the unit has no canonical form).
CREATE TABLE idx_quantity (
    pid    INTEGER NOT NULL,
    rid    INTEGER NOT NULL,
    value  REAL    NOT NULL,
    system TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    unit   TEXT    NOT NULL,
    cvalue REAL    NOT NULL,
    ccode  TEXT    NOT NULL,
    PRIMARY KEY (pid, value, rid, system, code, unit, cvalue, ccode)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, pid);

-- reference: target type and id of a relative reference; url of an
-- absolute one or a canonical (target_type and target_id empty then).
CREATE TABLE idx_reference (
    pid         INTEGER NOT NULL,
    rid         INTEGER NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    PRIMARY KEY (pid, target_id, target_type, rid, url)
) WITHOUT ROWID;
CREATE INDEX idx_reference_url ON idx_reference (pid, url, rid) WHERE url <> '';
CREATE INDEX idx_reference_rid ON idx_reference (rid, pid);

CREATE TABLE idx_uri (
    pid INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    uri TEXT    NOT NULL,
    PRIMARY KEY (pid, uri, rid)
) WITHOUT ROWID;
CREATE INDEX idx_uri_rid ON idx_uri (rid, pid);

-- composite: one row per combination of component values taken from the
-- same element (search.html#composite), up to three components. Each
-- component i has columns si (system; for quantities the unit system), ci
-- (token code, string norm, reference Type/id or URL, uri, quantity code),
-- and lo_i/hi_i (number, quantity value; dates in microseconds) with
-- cc_i/cv_i for a quantity's canonical unit and value.
CREATE TABLE idx_composite (
    pid  INTEGER NOT NULL,
    rid  INTEGER NOT NULL,
    s1   TEXT NOT NULL, c1 TEXT NOT NULL, lo1 REAL NOT NULL, hi1 REAL NOT NULL, cc1 TEXT NOT NULL, cv1 REAL NOT NULL,
    s2   TEXT NOT NULL, c2 TEXT NOT NULL, lo2 REAL NOT NULL, hi2 REAL NOT NULL, cc2 TEXT NOT NULL, cv2 REAL NOT NULL,
    s3   TEXT NOT NULL, c3 TEXT NOT NULL, lo3 REAL NOT NULL, hi3 REAL NOT NULL, cc3 TEXT NOT NULL, cv3 REAL NOT NULL
);
CREATE INDEX idx_composite_key ON idx_composite (pid, c1, rid);
CREATE INDEX idx_composite_rid ON idx_composite (rid, pid);
