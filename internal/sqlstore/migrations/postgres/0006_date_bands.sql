-- Date windows (search_daterange.go, search_window.go): narrow rows (span
-- under two days) by low in date order, wide rows (periods, open ends) by
-- high, as on SQLite (its migration 0004). The WHERE terms must stay
-- literally as the compiler writes them for the planner to use these
-- partial indexes. low + 172800000000 cannot overflow: low is a date's
-- lower bound, at most year 9999, or the minimum for an open start.
CREATE INDEX idx_date_narrow ON idx_date (pid, low, rid) WHERE high < low + 172800000000;
CREATE INDEX idx_date_wide ON idx_date (pid, high) WHERE high >= low + 172800000000;
