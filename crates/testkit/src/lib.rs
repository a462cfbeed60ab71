//! Test-only helpers: real dependencies started by the test harness and torn down on drop.
//! Used as a dev-dependency only (and by xtask benchmarks).

pub mod containerd;
pub mod eventually;
pub mod mosquitto;
pub mod rabbitmq;
pub mod registry;
pub mod swtpm;

pub use containerd::Containerd;
pub use eventually::eventually;
pub use mosquitto::Mosquitto;
pub use rabbitmq::RabbitMq;
pub use registry::Registry;
pub use swtpm::Swtpm;
