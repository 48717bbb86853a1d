-- Date intervals (search_daterange.go): narrow rows (span under two days)
-- by low, wide rows by high. The WHERE terms must stay literally as the
-- compiler writes them, or SQLite will not use these indexes.
CREATE INDEX idx_date_narrow ON idx_date (pid, low) WHERE high < low + 172800000000;
CREATE INDEX idx_date_wide ON idx_date (pid, high) WHERE high >= low + 172800000000;
