//! Where a store lives on etcd: endpoints, the key prefix that namespaces it, credentials,
//! TLS, timeouts and the cluster's limits.

use std::time::Duration;

use kv_api::{Error, Location, Result};

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// etcd's default `--max-txn-ops`: 128 operations (and 128 compares) per transaction.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// The location of a [`crate::Etcd`] store: a connection to a cluster and a key prefix.
///
/// It is the engine's [`kv_api::Engine::Storage`], so it is what `Store::open` takes. Every
/// call to the cluster is bounded by [`EtcdConfig::request_timeout`]; the limits must be the
/// cluster's own (`--max-request-bytes`, `--max-txn-ops`), so that a transaction too large
/// for them is refused before anything is sent.
///
/// ```
/// use std::time::Duration;
/// use kv_etcd::EtcdConfig;
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"], "myapp/users/")
///     .user("app", "secret")
///     .request_timeout(Duration::from_secs(2));
/// assert_eq!(config.prefix(), b"myapp/users/");
/// ```
#[derive(Clone)]
pub struct EtcdConfig {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: Vec<u8>,
    pub(crate) user: Option<(String, String)>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<etcd_client::TlsOptions>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_txn_ops: usize,
    pub(crate) compact_on_merge: bool,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_txn_ops", &self.max_txn_ops)
            .field("compact_on_merge", &self.compact_on_merge)
            .finish()
    }
}

impl Location for EtcdConfig {}

impl EtcdConfig {
    /// A store under `prefix` (every key the store writes starts with it) on the cluster
    /// reachable at `endpoints` (`http://host:port`, or `https://` with the `tls` feature).
    /// Defaults: no authentication, 5 s to connect, 10 s per request, etcd's default limits,
    /// and `merge` compacts the cluster's history.
    ///
    /// ```
    /// let config = kv_etcd::EtcdConfig::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], "app/");
    /// assert_eq!(config.endpoints().len(), 2);
    /// ```
    pub fn new<E: AsRef<str>>(
        endpoints: impl IntoIterator<Item = E>,
        prefix: impl AsRef<[u8]>,
    ) -> Self {
        EtcdConfig {
            endpoints: endpoints
                .into_iter()
                .map(|e| e.as_ref().to_owned())
                .collect(),
            prefix: prefix.as_ref().to_vec(),
            user: None,
            #[cfg(feature = "tls")]
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            compact_on_merge: true,
        }
    }

    /// The endpoints from an environment variable holding them comma-separated (such as
    /// `KV_ETCD_ENDPOINTS=http://127.0.0.1:2379,http://127.0.0.1:22379`);
    /// [`Error::InvalidArgument`] naming the variable if it is unset or empty.
    ///
    /// ```
    /// let missing = kv_etcd::EtcdConfig::from_env("KV_ETCD_NO_SUCH_VARIABLE", "app/");
    /// assert!(matches!(missing, Err(kv_api::Error::InvalidArgument(_))));
    /// ```
    pub fn from_env(var: &str, prefix: impl AsRef<[u8]>) -> Result<Self> {
        let value = std::env::var(var).unwrap_or_default();
        let endpoints: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no etcd endpoints: set {var} to the cluster's client URLs, comma-separated \
                 (for example http://127.0.0.1:2379)"
            )));
        }
        Ok(Self::new(endpoints, prefix))
    }

    /// Authenticates as `user` (etcd's user/password authentication).
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Connects with TLS (rustls), for `https://` endpoints.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: etcd_client::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long each request to the cluster may take; past it the call fails with
    /// [`Error::Io`] (kind `TimedOut`) naming the endpoints.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The cluster's `--max-request-bytes` (default 1.5 MiB).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// The cluster's `--max-txn-ops` (default 128).
    pub fn max_txn_ops(mut self, ops: usize) -> Self {
        self.max_txn_ops = ops;
        self
    }

    /// Whether `merge` compacts the cluster's history (etcd compaction is cluster-wide: it
    /// drops the old revisions of *every* key, other prefixes included). With `false`,
    /// `merge` only records its horizon and drops removal markers: merged-away versions read
    /// as `VersionNotFound` all the same, but etcd keeps their bytes until the cluster is
    /// compacted by other means.
    pub fn compact_on_merge(mut self, compact: bool) -> Self {
        self.compact_on_merge = compact;
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// A copy of this config under another prefix (another store on the same cluster).
    pub fn with_prefix(&self, prefix: impl AsRef<[u8]>) -> Self {
        EtcdConfig {
            prefix: prefix.as_ref().to_vec(),
            ..self.clone()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::InvalidArgument("EtcdConfig has no endpoints".into()));
        }
        if self.prefix.is_empty() {
            return Err(Error::InvalidArgument(
                "EtcdConfig needs a non-empty key prefix (it namespaces the store)".into(),
            ));
        }
        if self.max_txn_ops < 2 || self.max_request_bytes < 1024 {
            return Err(Error::InvalidArgument(format!(
                "etcd limits too small: {} operations, {} bytes per request",
                self.max_txn_ops, self.max_request_bytes
            )));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "etcd timeouts must be above zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_empty_endpoints_prefix_and_limits() {
        assert!(EtcdConfig::new(["http://a:1"], "p/").validate().is_ok());
        let none: [&str; 0] = [];
        assert!(matches!(
            EtcdConfig::new(none, "p/").validate(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            EtcdConfig::new(["http://a:1"], "").validate(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            EtcdConfig::new(["http://a:1"], "p/")
                .max_txn_ops(1)
                .validate(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            EtcdConfig::new(["http://a:1"], "p/")
                .request_timeout(Duration::ZERO)
                .validate(),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!(
            "{:?}",
            EtcdConfig::new(["http://a:1"], "p/").user("u", "hunter2")
        );
        assert!(text.contains("\"u\""), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn from_env_without_the_variable_is_a_typed_error() {
        let err = EtcdConfig::from_env("KV_ETCD_SURELY_UNSET_VARIABLE", "p/");
        assert!(
            matches!(&err, Err(Error::InvalidArgument(m)) if m.contains("KV_ETCD_SURELY_UNSET_VARIABLE")),
            "{err:?}"
        );
    }
}
