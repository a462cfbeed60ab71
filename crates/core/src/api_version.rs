//! The workload API versions Azure IoT Edge publishes; modules send one as `?api-version=`.

/// Every published workload API version, oldest first.
pub const WORKLOAD_API_VERSIONS: &[&str] =
    &["2018-06-28", "2019-01-30", "2019-10-22", "2019-11-05", "2020-07-07", "2021-12-07", "2022-08-03"];

/// The version handed to modules in `IOTEDGE_APIVERSION`.
pub const DEFAULT_WORKLOAD_API_VERSION: &str = "2022-08-03";

/// Whether `version` is one of [`WORKLOAD_API_VERSIONS`].
pub fn is_supported(version: &str) -> bool {
    WORKLOAD_API_VERSIONS.contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_versions_are_supported_and_others_are_not() {
        assert!(is_supported("2018-06-28"));
        assert!(is_supported(DEFAULT_WORKLOAD_API_VERSION));
        assert!(!is_supported("2017-01-01"));
        assert!(!is_supported(""));
    }
}
