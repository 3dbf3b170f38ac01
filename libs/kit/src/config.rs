//! Typed configuration from environment variables, with an optional `KEY=VALUE` file named by
//! `CHORUS_CONFIG_FILE` underneath (the environment wins). Secrets are a type that never
//! prints its value.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::{Error, Violations};

/// A value that must never reach a log line or a Debug dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself; call only where it is used (a connection, a signature).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where configuration values come from: the process environment over an optional file.
#[derive(Debug, Clone, Default)]
pub struct Source {
    values: HashMap<String, String>,
}

impl Source {
    /// The process environment, over `CHORUS_CONFIG_FILE` when that is set.
    pub fn from_env() -> Result<Self, Error> {
        let mut values = HashMap::new();
        if let Ok(path) = std::env::var("CHORUS_CONFIG_FILE") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::invalid_field("CHORUS_CONFIG_FILE", format!("cannot read {path}: {e}")))?;
            values.extend(parse_file(&text));
        }
        values.extend(std::env::vars());
        Ok(Source { values })
    }

    /// A source from explicit pairs, for tests and for `chorus up`.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Source {
            values: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// This source with `overrides` on top (`chorus up` gives each service its own database
    /// and port over the shared environment).
    pub fn with_overrides<I, K, V>(&self, overrides: I) -> Source
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut values = self.values.clone();
        values.extend(overrides.into_iter().map(|(k, v)| (k.into(), v.into())));
        Source { values }
    }

    /// This source beneath `over`: `over`'s values win.
    pub fn under(&self, over: &Source) -> Source {
        self.with_overrides(over.values.iter().map(|(k, v)| (k.clone(), v.clone())))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

fn parse_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// Reads typed values, collecting every bad one so start-up names all of them at once.
#[derive(Debug)]
pub struct Reader<'a> {
    source: &'a Source,
    violations: Violations,
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a Source) -> Self {
        Reader {
            source,
            violations: Violations::new(),
        }
    }

    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.source.get(key).unwrap_or(default).to_owned()
    }

    pub fn optional(&mut self, key: &str) -> Option<String> {
        self.source.get(key).map(str::to_owned)
    }

    /// A secret from the file `{key}_FILE` names (how Kubernetes mounts secrets), else from
    /// `{key}` itself; a file that cannot be read is a violation naming it. Every secret the
    /// kit and the services read comes through here, so each can be a file.
    pub fn secret(&mut self, key: &str) -> Option<Secret<String>> {
        let file_key = format!("{key}_FILE");
        match self.optional(&file_key) {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(v) => Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_owned())),
                Err(e) => {
                    self.check(true, &file_key, format!("cannot read {path}: {e}"));
                    None
                }
            },
            None => self.source.get(key).map(|v| Secret::new(v.to_owned())),
        }
    }

    /// As [`Reader::secret`], for a secret that may be absent: a `{key}_FILE` that does not
    /// exist is no secret rather than a bad value (an optional Kubernetes Secret mounted as a
    /// volume leaves no file when the Secret or its key is missing); any other read error is
    /// still named.
    pub fn optional_secret(&mut self, key: &str) -> Option<Secret<String>> {
        let file_key = format!("{key}_FILE");
        match self.optional(&file_key) {
            Some(path) if !std::path::Path::new(&path).exists() => None,
            _ => self.secret(key),
        }
    }

    pub fn parse<T: std::str::FromStr>(&mut self, key: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.source.get(key) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.violations.add(key, format!("cannot parse {raw:?}: {e}"));
                    default
                }
            },
        }
    }

    pub fn addr(&mut self, key: &str, default: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        let default = default.parse().unwrap_or(fallback);
        self.parse(key, default)
    }

    pub fn duration_ms(&mut self, key: &str, default_ms: u64) -> Duration {
        Duration::from_millis(self.parse(key, default_ms))
    }

    /// Adds a violation of a rule beyond parsing (a required value, a range).
    pub fn check(&mut self, bad: bool, key: &str, description: impl Into<String>) {
        self.violations.check(bad, key, description);
    }

    pub fn finish(self) -> Result<(), Error> {
        self.violations.finish()
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            other => Err(format!("expected json or pretty, got {other}")),
        }
    }
}

/// What every service's server needs, read from the same variables everywhere.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `CHORUS_GRPC_ADDR`: the API listener.
    pub grpc_addr: SocketAddr,
    /// `CHORUS_HEALTH_ADDR`: an extra plaintext listener serving only grpc.health.v1, for
    /// kubelet probes; none when unset.
    pub health_addr: Option<SocketAddr>,
    /// `CHORUS_MAX_MESSAGE_BYTES`: largest request or response message.
    pub max_message_bytes: usize,
    /// `CHORUS_SHUTDOWN_GRACE_MS`: how long health reports NOT_SERVING before the listener
    /// stops accepting, so load balancers drain first.
    pub shutdown_grace: Duration,
    /// `CHORUS_REQUEST_TIMEOUT_MS`: server-side ceiling on any call, streams included; unset
    /// means none. A caller's `grpc-timeout` is always honoured.
    pub request_timeout: Option<Duration>,
    /// `CHORUS_DRAIN_TIMEOUT_MS`: after the grace period, how long in-flight calls and open
    /// connections may take to finish before the server stops without them.
    pub drain_timeout: Duration,
}

impl ServerConfig {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let health = r.optional("CHORUS_HEALTH_ADDR");
        ServerConfig {
            grpc_addr: r.addr("CHORUS_GRPC_ADDR", "0.0.0.0:50051"),
            health_addr: health.map(|_| r.addr("CHORUS_HEALTH_ADDR", "0.0.0.0:8081")),
            max_message_bytes: r.parse("CHORUS_MAX_MESSAGE_BYTES", 16 * 1024 * 1024),
            shutdown_grace: r.duration_ms("CHORUS_SHUTDOWN_GRACE_MS", 0),
            request_timeout: r
                .optional("CHORUS_REQUEST_TIMEOUT_MS")
                .map(|_| r.duration_ms("CHORUS_REQUEST_TIMEOUT_MS", 0)),
            drain_timeout: r.duration_ms("CHORUS_DRAIN_TIMEOUT_MS", 20_000),
        }
    }

    /// Loopback on a free port: for tests and `chorus up`.
    pub fn local(port: u16) -> Self {
        ServerConfig {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            health_addr: None,
            max_message_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::ZERO,
            request_timeout: None,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("postgres://u:hunter2@db/x".to_owned());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
    }

    #[test]
    fn every_bad_value_is_named() {
        let src = Source::from_pairs([("CHORUS_GRPC_ADDR", "nope"), ("CHORUS_MAX_MESSAGE_BYTES", "-1")]);
        let mut r = Reader::new(&src);
        let _ = ServerConfig::read(&mut r);
        let err = r.finish().unwrap_err();
        let fields: Vec<_> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["CHORUS_GRPC_ADDR", "CHORUS_MAX_MESSAGE_BYTES"]);
    }

    #[test]
    fn a_secret_comes_from_its_file_first() {
        let dir = std::env::temp_dir().join(format!("chorus-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("database-url");
        std::fs::write(&file, "postgres://from-file/x\n").unwrap();
        let path = file.display().to_string();
        let missing = dir.join("nothing").display().to_string();
        let src = Source::from_pairs([
            ("DATABASE_URL", "postgres://from-env/x"),
            ("DATABASE_URL_FILE", path.as_str()),
            ("REDIS_URL", "redis://from-env"),
            ("CHORUS_CLIENT_SECRET_FILE", missing.as_str()),
        ]);
        let mut r = Reader::new(&src);
        // The file wins over the variable, without its trailing newline.
        assert_eq!(r.secret("DATABASE_URL").unwrap().expose(), "postgres://from-file/x");
        // No file named: the variable.
        assert_eq!(r.secret("REDIS_URL").unwrap().expose(), "redis://from-env");
        // A file named that cannot be read is a bad value, named.
        assert!(r.secret("CHORUS_CLIENT_SECRET").is_none());
        let err = r.finish().unwrap_err();
        let fields: Vec<_> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["CHORUS_CLIENT_SECRET_FILE"]);

        // An optional secret whose file is missing is simply absent.
        let src = Source::from_pairs([("CHORUS_STRIPE_API_KEY_FILE", missing.as_str())]);
        let mut r = Reader::new(&src);
        assert!(r.optional_secret("CHORUS_STRIPE_API_KEY").is_none());
        assert!(r.finish().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_values_sit_under_the_environment() {
        let parsed = parse_file("# comment\nA=1\n B = \"two\" \n\nbad line\n");
        assert_eq!(parsed, vec![("A".into(), "1".into()), ("B".into(), "two".into())]);
    }
}
