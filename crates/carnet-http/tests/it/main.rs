//! The HTTP adapter's wire behaviour, in process (the binary's own tests cover the
//! real server): headers, the error envelope, limits, the API and its description.

mod api;
mod audit;
mod auth;
mod backups;
mod bench_http;
mod clinical;
mod device_certificates;
mod devices;
mod documents;
mod generated;
mod middleware;
mod pages_records;
mod passkeys;
mod patients;
mod pin;
mod rotation;
mod softkey;
mod support;
