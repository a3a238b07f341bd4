-- Row-level security exists on PostgreSQL only (see postgres/0014_row_level_security.sql):
-- an embedded SQLite database is opened by one process, Carnet itself, and every query
-- filters on the practice of its capability. This step keeps both series numbered alike.
SELECT 1;
