//! Resource usage of a task from containerd's Tasks.Metrics, which answers with the cgroup
//! statistics as an `Any`: `io.containerd.cgroups.v1.Metrics` on cgroup v1 hosts and
//! `io.containerd.cgroups.v2.Metrics` on unified ones. Only the fields read here are
//! declared (tags from containerd/cgroups' `metrics.proto`); the rest is skipped by prost.

use containerd_client::services::v1::MetricsRequest;
use containerd_client::services::v1::tasks_client::TasksClient;
use prost::Message as _;

use super::Containerd;
use crate::container::Stats;
use crate::error::RuntimeError;

mod v1 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "2")]
        pub pids: Option<Pids>,
        #[prost(message, optional, tag = "3")]
        pub cpu: Option<Cpu>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<Memory>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pids {
        #[prost(uint64, tag = "1")]
        pub current: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Cpu {
        #[prost(message, optional, tag = "1")]
        pub usage: Option<CpuUsage>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CpuUsage {
        /// Nanoseconds.
        #[prost(uint64, tag = "1")]
        pub total: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Memory {
        #[prost(uint64, tag = "30")]
        pub total_inactive_file: u64,
        #[prost(message, optional, tag = "33")]
        pub usage: Option<MemoryEntry>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemoryEntry {
        #[prost(uint64, tag = "1")]
        pub limit: u64,
        #[prost(uint64, tag = "2")]
        pub usage: u64,
    }
}

mod v2 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "1")]
        pub pids: Option<Pids>,
        #[prost(message, optional, tag = "2")]
        pub cpu: Option<Cpu>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<Memory>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pids {
        #[prost(uint64, tag = "1")]
        pub current: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Cpu {
        #[prost(uint64, tag = "1")]
        pub usage_usec: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Memory {
        #[prost(uint64, tag = "13")]
        pub inactive_file: u64,
        #[prost(uint64, tag = "32")]
        pub usage: u64,
        #[prost(uint64, tag = "33")]
        pub usage_limit: u64,
    }
}

/// A limit of "no limit" as the kernel reports it (page-rounded `i64::MAX`).
fn limit(value: u64) -> Option<u64> {
    (value > 0 && value < (1 << 62)).then_some(value)
}

/// Decodes a cgroup metrics `Any` by its type.
fn decode(type_url: &str, bytes: &[u8]) -> Option<Stats> {
    if type_url.ends_with("io.containerd.cgroups.v1.Metrics") {
        let m = v1::Metrics::decode(bytes).ok()?;
        let memory = m.memory.unwrap_or_default();
        let usage = memory.usage.unwrap_or_default();
        Some(Stats {
            cpu_ns: m.cpu.and_then(|c| c.usage).map_or(0, |u| u.total),
            memory_bytes: usage.usage.saturating_sub(memory.total_inactive_file),
            memory_limit: limit(usage.limit),
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else if type_url.ends_with("io.containerd.cgroups.v2.Metrics") {
        let m = v2::Metrics::decode(bytes).ok()?;
        let memory = m.memory.unwrap_or_default();
        Some(Stats {
            cpu_ns: m.cpu.map_or(0, |c| c.usage_usec.saturating_mul(1000)),
            memory_bytes: memory.usage.saturating_sub(memory.inactive_file),
            memory_limit: limit(memory.usage_limit),
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else {
        None
    }
}

impl Containerd {
    /// CPU, memory and process count of container `id`'s running task; `None` when it has
    /// no running task or the host's cgroup format is unknown.
    pub async fn stats(&self, id: &str) -> Result<Option<Stats>, RuntimeError> {
        let request = self.request(MetricsRequest { filters: vec![format!("id=={id}")] }, None);
        let response = match TasksClient::new(self.channel.clone()).metrics(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => return Err(RuntimeError::Containerd { operation: "task metrics", status }),
        };
        Ok(response.metrics.into_iter().filter(|m| m.id == id).find_map(|m| {
            let data = m.data?;
            decode(&data.type_url, &data.value)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_cgroup_formats_decode() {
        let v1 = v1::Metrics {
            pids: Some(v1::Pids { current: 3 }),
            cpu: Some(v1::Cpu { usage: Some(v1::CpuUsage { total: 5_000 }) }),
            memory: Some(v1::Memory {
                total_inactive_file: 100,
                usage: Some(v1::MemoryEntry { limit: 9_223_372_036_854_771_712, usage: 1_100 }),
            }),
        };
        let stats = decode("io.containerd.cgroups.v1.Metrics", &v1.encode_to_vec()).unwrap();
        assert_eq!(stats, Stats { cpu_ns: 5_000, memory_bytes: 1_000, memory_limit: None, pids: 3 });

        let v2 = v2::Metrics {
            pids: Some(v2::Pids { current: 1 }),
            cpu: Some(v2::Cpu { usage_usec: 7 }),
            memory: Some(v2::Memory { inactive_file: 10, usage: 60, usage_limit: 1 << 20 }),
        };
        let stats = decode("types.example/io.containerd.cgroups.v2.Metrics", &v2.encode_to_vec()).unwrap();
        assert_eq!(stats, Stats { cpu_ns: 7_000, memory_bytes: 50, memory_limit: Some(1 << 20), pids: 1 });
        assert_eq!(decode("something.else", &[]), None);
    }
}
