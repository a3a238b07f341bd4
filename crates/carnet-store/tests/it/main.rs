//! The storage conformance suite: every test runs against SQLite (always) and
//! PostgreSQL (when `CARNET_TEST_POSTGRES_URL` is set; each test in a fresh schema).

mod support;

mod accounts;
mod audit;
mod jobs;
mod migrations;
mod patients;
mod practices;
