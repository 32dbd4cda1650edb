//! The immutable snapshot every request runs on: compiled config plus the pieces derived from it
//! (TLS configs, pool keys, the `/v1/models` body). Built off the data path by the control side;
//! workers load it with one atomic read per request (`arc-swap`). A request keeps the `Arc` it
//! started with, so a reload never changes a request mid-flight.

use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tollgate_config::{Config, Scheme};
use tollgate_http::HeadLimits;

use crate::tls;

/// TLS client pieces for one https backend.
#[derive(Clone)]
pub struct UpstreamTls {
    /// Connector (shares the client config).
    pub connector: monoio_rustls::TlsConnector,
    /// SNI / verification name.
    pub server_name: ServerName<'static>,
}

/// One generation of the gateway's configuration, ready for the data path.
pub struct Snapshot {
    /// The compiled config.
    pub config: Config,
    /// Increments on every successful reload.
    pub generation: u64,
    /// Head limits in the codec's form.
    pub head_limits: HeadLimits,
    /// HTTPS listener config, when configured.
    pub tls_acceptor: Option<monoio_rustls::TlsAcceptor>,
    /// Per backend (same index as `config.backends`): TLS client config for https backends.
    pub upstream_tls: Vec<Option<UpstreamTls>>,
    /// Per backend: pool key (name + address + scheme), stable across reloads when unchanged.
    pub pool_keys: Vec<Arc<str>>,
    /// Per backend: name as a cheap shared string (metric label).
    pub backend_names: Vec<Arc<str>>,
    /// Per model: name as a shared string (metric label).
    pub model_names: Vec<Arc<str>>,
    /// Pre-rendered `GET /v1/models` body.
    pub models_json: Bytes,
    /// Routing view: backend states, caps, prefix table, pool labels.
    pub route: crate::routing::RouteRt,
    /// Per key (same index as the key store): public id as a shared string.
    pub key_ids: Vec<Arc<str>>,
    /// Per consumer (same index as the key store): labels for logs, metrics and the ledger.
    pub consumer_labels: Vec<ConsumerLabels>,
}

/// A consumer's names as cheap shared strings.
pub struct ConsumerLabels {
    /// Consumer name.
    pub name: Arc<str>,
    /// Tenant.
    pub tenant: Arc<str>,
    /// Project.
    pub project: Arc<str>,
}

/// Build a snapshot; fails (keeping the old one in force) if TLS material cannot be loaded.
/// `route` carries backend state across reloads; `None` (config checks) uses a throwaway one.
pub fn build_snapshot(
    config: Config,
    generation: u64,
    route: Option<&crate::routing::RouteShared>,
) -> Result<Snapshot, String> {
    let tls_acceptor = match &config.listen.tls {
        Some(files) => Some(monoio_rustls::TlsAcceptor::from(tls::server_config(
            &files.cert,
            &files.key,
        )?)),
        None => None,
    };
    let mut upstream_tls = Vec::with_capacity(config.backends.len());
    for b in &config.backends {
        upstream_tls.push(match b.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let cfg = tls::client_config(b.ca_file.as_deref())
                    .map_err(|e| format!("backend {}: {e}", b.name))?;
                let server_name = ServerName::try_from(b.host.clone())
                    .map_err(|e| format!("backend {}: bad TLS server name: {e}", b.name))?;
                Some(UpstreamTls {
                    connector: monoio_rustls::TlsConnector::from(cfg),
                    server_name,
                })
            }
        });
    }
    let pool_keys: Vec<Arc<str>> = config
        .backends
        .iter()
        .map(|b| {
            let scheme = if b.scheme == Scheme::Https {
                "https"
            } else {
                "http"
            };
            Arc::from(format!(
                "{}|{}://{}:{}|{:?}",
                b.name, scheme, b.host, b.port, b.addrs
            ))
        })
        .collect();
    let route = match route {
        Some(r) => r.build(&config, &pool_keys),
        None => crate::routing::RouteShared::new(1, 1024).build(&config, &pool_keys),
    };
    let backend_names = config
        .backends
        .iter()
        .map(|b| Arc::from(b.name.as_str()))
        .collect();
    let model_names = config
        .models
        .iter()
        .map(|m| Arc::from(m.name.as_str()))
        .collect();
    let data: Vec<serde_json::Value> = config
        .models
        .iter()
        .map(|m| serde_json::json!({"id": m.name, "object": "model", "created": 0, "owned_by": m.owned_by}))
        .collect();
    let models_json = Bytes::from(
        serde_json::to_vec(&serde_json::json!({"object": "list", "data": data}))
            .map_err(|e| format!("models: {e}"))?,
    );
    let l = &config.limits;
    let head_limits = HeadLimits {
        max_request_line: l.max_request_line_bytes,
        max_head_bytes: l.max_header_bytes,
        max_headers: l.max_headers,
    };
    let keys = &config.governance.keys;
    let key_ids = keys
        .keys()
        .iter()
        .map(|k| Arc::from(k.id.as_str()))
        .collect();
    let consumer_labels = keys
        .consumers()
        .iter()
        .map(|c| ConsumerLabels {
            name: Arc::from(c.name.as_str()),
            tenant: Arc::from(c.tenant.as_str()),
            project: Arc::from(c.project.as_str()),
        })
        .collect();
    Ok(Snapshot {
        key_ids,
        consumer_labels,
        config,
        generation,
        head_limits,
        tls_acceptor,
        upstream_tls,
        pool_keys,
        backend_names,
        model_names,
        models_json,
        route,
    })
}
