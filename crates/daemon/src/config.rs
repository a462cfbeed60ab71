//! Layered configuration: a base TOML file, then every `config.d/*.toml` beside it in
//! lexical order, each merged over the result (tables merge key by key, anything else is
//! replaced). The merged document is deserialised once; errors name the file or the key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        message: String,
    },
    /// The merged configuration does not fit the daemon's schema.
    #[error("invalid configuration {files}: key `{key}`: {message}")]
    Invalid {
        /// The files that were merged.
        files: String,
        /// The dotted key path of the problem.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// `[management]`: the daemon's management socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementConfig {
    /// Permission bits of the socket.
    pub socket_mode: u32,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self { socket_mode: 0o660 }
    }
}

/// The drop-in files for `base`: `config.d/*.toml` in the same directory, sorted.
pub fn drop_ins(base: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = base.parent().unwrap_or(Path::new(".")).join("config.d");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::Read { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read { path: dir.clone(), source })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads `base` and its drop-ins into `T`.
pub fn load_config<T: DeserializeOwned>(base: &Path) -> Result<T, ConfigError> {
    let mut files = vec![base.to_owned()];
    files.extend(drop_ins(base)?);
    let mut merged = toml::Table::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        merge(&mut merged, table);
    }
    from_table(merged).map_err(|(key, message)| ConfigError::Invalid {
        files: files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "),
        key,
        message,
    })
}

/// Deserialises one configuration from TOML text (for `--print-default-config` round trips
/// and tests).
pub fn parse_config<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse { path: PathBuf::from("<text>"), message: e.to_string() })?;
    from_table(table).map_err(|(key, message)| ConfigError::Invalid { files: "<text>".into(), key, message })
}

fn from_table<T: DeserializeOwned>(table: toml::Table) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        (key, e.into_inner().message().to_owned())
    })
}

/// Merges `from` over `into`: tables key by key, anything else replaced.
pub fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => merge(existing, incoming),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        name: String,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        a: u32,
        #[serde(default)]
        b: u32,
    }

    #[test]
    fn drop_ins_merge_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("config.toml");
        std::fs::write(&base, "name = \"base\"\n[inner]\na = 1\nb = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("config.d")).unwrap();
        std::fs::write(dir.path().join("config.d/20-b.toml"), "[inner]\nb = 3\n").unwrap();
        std::fs::write(dir.path().join("config.d/10-a.toml"), "name = \"a\"\n[inner]\nb = 2\n").unwrap();
        std::fs::write(dir.path().join("config.d/ignored.txt"), "garbage").unwrap();
        let config: Config = load_config(&base).unwrap();
        assert_eq!(config, Config { name: "a".into(), inner: Inner { a: 1, b: 3 } });
    }

    #[test]
    fn errors_name_the_file_or_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("config.toml");
        std::fs::write(&base, "name = \n").unwrap();
        let err = load_config::<Config>(&base).unwrap_err();
        assert!(matches!(&err, ConfigError::Parse { path, .. } if path == &base), "{err}");

        std::fs::write(&base, "name = \"x\"\n[inner]\nc = 1\n").unwrap();
        let err = load_config::<Config>(&base).unwrap_err().to_string();
        assert!(err.contains("inner") && err.contains("unknown field `c`"), "{err}");

        let missing = load_config::<Config>(&dir.path().join("nope.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }
}
