//! Test-only helpers: real dependencies started by the test harness and torn down on drop.
//! Used as a dev-dependency only.

pub mod swtpm;

pub use swtpm::Swtpm;
