//! Shared fixtures for the end-to-end tests and benchmarks of ossa-events.

/// Directory of the CloudEvents reference documents (`../shared/spec` beside the clone).
pub fn spec_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec")
}
