//! Validation and compilation: cross-references (model → backend), value ranges, address
//! parsing and name resolution. Collects every error instead of stopping at the first.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::error::ConfigError;
use crate::raw::RawConfig;
use crate::types::*;
use tollgate_core::locate::line_col;

pub(crate) struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub(crate) fn err<T>(&mut self, at: &Spanned<T>, field: &str, msg: impl Into<String>) {
        let (l, c) = line_col(self.text, at.span().start);
        self.errors
            .push(ConfigError::new(self.file, l, c, field, msg.into()));
    }

    fn err_nowhere(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, 0, 0, field, msg.into()));
    }

    /// A number within `[min, max]`, or the default.
    pub(crate) fn num(
        &mut self,
        v: &Option<Spanned<u64>>,
        field: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        match v {
            None => default,
            Some(s) if (min..=max).contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                self.err(
                    s,
                    field,
                    format!("must be between {min} and {max}, got {}", s.get_ref()),
                );
                default
            }
        }
    }

    fn ms(&mut self, v: &Option<Spanned<u64>>, field: &str, default: u64, min: u64) -> Duration {
        Duration::from_millis(self.num(v, field, default, min, 86_400_000))
    }

    fn addr(&mut self, v: &Spanned<String>, field: &str) -> Option<SocketAddr> {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    v,
                    field,
                    format!("not an IP:port address: {:?}", v.get_ref()),
                );
                None
            }
        }
    }
}

/// Compile a raw config into a [`Config`], or return every error found.
pub fn compile(
    raw: RawConfig,
    text: &str,
    file: &str,
    base_dir: &Path,
) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx {
        text,
        file,
        errors: Vec::new(),
    };

    let workers = match &raw.workers {
        None => 0,
        Some(w) if *w.get_ref() <= 1024 => *w.get_ref(),
        Some(w) => {
            cx.err(w, "workers", "must be between 0 (= one per core) and 1024");
            0
        }
    };
    let workers = if workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        workers
    };

    let io_driver = match raw.io_driver.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "auto")) => IoDriver::Auto,
        Some((_, "io_uring")) => IoDriver::IoUring,
        Some((_, "epoll")) => IoDriver::Epoll,
        Some((s, other)) => {
            cx.err(
                s,
                "io_driver",
                format!("unknown driver {other:?}; expected auto, io_uring or epoll"),
            );
            IoDriver::Auto
        }
    };

    // Listeners.
    let l = &raw.listen;
    let http = match &l.http {
        Some(s) if s.get_ref().is_empty() => None,
        Some(s) => cx.addr(s, "listen.http"),
        None => "127.0.0.1:8080".parse().ok(),
    };
    let https = l.https.as_ref().and_then(|s| cx.addr(s, "listen.https"));
    let admin = match &l.admin {
        Some(s) => cx.addr(s, "listen.admin"),
        None => "127.0.0.1:9090".parse().ok(),
    };
    let tls = match (&l.tls_cert, &l.tls_key) {
        (Some(c), Some(k)) => Some(TlsFiles {
            cert: base_dir.join(c.get_ref()),
            key: base_dir.join(k.get_ref()),
        }),
        (Some(c), None) => {
            cx.err(
                c,
                "listen.tls_key",
                "tls_cert is set but tls_key is missing",
            );
            None
        }
        (None, Some(k)) => {
            cx.err(
                k,
                "listen.tls_cert",
                "tls_key is set but tls_cert is missing",
            );
            None
        }
        (None, None) => None,
    };
    if let (Some(h), None) = (&l.https, &tls) {
        cx.err(
            h,
            "listen.https",
            "an HTTPS listener needs listen.tls_cert and listen.tls_key",
        );
    }
    if http.is_none() && https.is_none() && l.http.is_some() && l.https.is_none() {
        cx.err_nowhere(
            "listen",
            "no data listener: set listen.http or listen.https",
        );
    }

    // Limits (defaults from the reliability notes: nginx/Envoy edge values).
    let lim = &raw.limits;
    let limits = Limits {
        max_request_line_bytes: cx.num(
            &lim.max_request_line_bytes,
            "limits.max_request_line_bytes",
            8192,
            64,
            1 << 20,
        ) as usize,
        max_header_bytes: cx.num(
            &lim.max_header_bytes,
            "limits.max_header_bytes",
            32768,
            256,
            1 << 22,
        ) as usize,
        max_headers: cx.num(&lim.max_headers, "limits.max_headers", 100, 4, 10_000) as usize,
        max_body_bytes: cx.num(
            &lim.max_body_bytes,
            "limits.max_body_bytes",
            16 << 20,
            1,
            1 << 34,
        ),
        header_read_timeout: cx.ms(
            &lim.header_read_timeout_ms,
            "limits.header_read_timeout_ms",
            10_000,
            1,
        ),
        body_idle_timeout: cx.ms(
            &lim.body_idle_timeout_ms,
            "limits.body_idle_timeout_ms",
            30_000,
            1,
        ),
        keepalive_timeout: cx.ms(
            &lim.keepalive_timeout_ms,
            "limits.keepalive_timeout_ms",
            60_000,
            1,
        ),
        max_connections_per_worker: cx.num(
            &lim.max_connections_per_worker,
            "limits.max_connections_per_worker",
            10_000,
            1,
            1_000_000,
        ) as usize,
    };

    let up = &raw.upstream;
    let upstream = UpstreamSettings {
        connect_timeout: cx.ms(
            &up.connect_timeout_ms,
            "upstream.connect_timeout_ms",
            2_000,
            1,
        ),
        first_byte_timeout: cx.ms(
            &up.first_byte_timeout_ms,
            "upstream.first_byte_timeout_ms",
            120_000,
            1,
        ),
        idle_timeout: cx.ms(&up.idle_timeout_ms, "upstream.idle_timeout_ms", 60_000, 1),
        pool_max_idle_per_backend: cx.num(
            &up.pool_max_idle_per_backend,
            "upstream.pool_max_idle_per_backend",
            64,
            0,
            100_000,
        ) as usize,
        pool_idle_timeout: cx.ms(
            &up.pool_idle_timeout_ms,
            "upstream.pool_idle_timeout_ms",
            60_000,
            1,
        ),
        max_response_body_bytes: cx.num(
            &up.max_response_body_bytes,
            "upstream.max_response_body_bytes",
            64 << 20,
            1024,
            1 << 34,
        ),
        retries: cx.num(&up.retries, "upstream.retries", 1, 0, 3) as u32,
    };
    let drain_timeout = cx.ms(
        &raw.shutdown.drain_timeout_ms,
        "shutdown.drain_timeout_ms",
        30_000,
        0,
    );
    let metrics_publish_interval = cx.ms(
        &raw.metrics.publish_interval_ms,
        "metrics.publish_interval_ms",
        250,
        10,
    );
    let access_log = match &raw.log.access_log {
        None => AccessLog::Stdout,
        Some(s) => match s.get_ref().as_str() {
            "off" | "" => AccessLog::Off,
            "stdout" | "-" => AccessLog::Stdout,
            p => AccessLog::File(base_dir.join(p)),
        },
    };

    // Content-scanning rule files.
    let scan = compile_scan(&mut cx, &raw.scan, base_dir);

    // Backends.
    let mut backends = Vec::new();
    let mut names = HashSet::new();
    for (i, b) in raw.backends.iter().enumerate() {
        let f = |k: &str| format!("backends[{i}].{k}");
        let name = b.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            cx.err(
                &b.name,
                &f("name"),
                "must be non-empty and use only [A-Za-z0-9-_.]",
            );
        }
        if !names.insert(name.clone()) {
            cx.err(
                &b.name,
                &f("name"),
                format!("duplicate backend name {name:?}"),
            );
        }
        let kind = match b.kind.get_ref().as_str() {
            "vllm" => BackendKind::Vllm,
            "sglang" => BackendKind::Sglang,
            "mindie" => BackendKind::Mindie,
            "openai" => BackendKind::Openai,
            other => {
                cx.err(&b.kind, &f("kind"), format!("unknown backend kind {other:?}; expected one of vllm, sglang, mindie, openai"));
                BackendKind::Vllm
            }
        };
        // A bad URL is reported once; the backend still exists so references to it resolve
        // and do not produce a second, misleading error.
        let (parsed, addrs) = match parse_url(b.url.get_ref()) {
            Some(parsed) => {
                let addrs: Vec<SocketAddr> =
                    match (parsed.host.as_str(), parsed.port).to_socket_addrs() {
                        Ok(a) => a.collect(),
                        Err(e) => {
                            cx.err(
                                &b.url,
                                &f("url"),
                                format!("cannot resolve host {:?}: {e}", parsed.host),
                            );
                            Vec::new()
                        }
                    };
                (parsed, addrs)
            }
            None => {
                cx.err(&b.url, &f("url"), "expected http://host[:port][/prefix] or https://…; query strings, user info and fragments are not allowed");
                (
                    ParsedUrl {
                        tls: false,
                        host: String::new(),
                        port: 0,
                        path: String::new(),
                    },
                    Vec::new(),
                )
            }
        };
        let api_key = match (&b.api_key, &b.api_key_env) {
            (Some(k), None) => Some(k.get_ref().clone()),
            (None, Some(env)) => match std::env::var(env.get_ref()) {
                Ok(v) if !v.is_empty() => Some(v),
                _ => {
                    cx.err(
                        env,
                        &f("api_key_env"),
                        format!("environment variable {} is not set", env.get_ref()),
                    );
                    None
                }
            },
            (Some(k), Some(_)) => {
                cx.err(
                    k,
                    &f("api_key"),
                    "set either api_key or api_key_env, not both",
                );
                None
            }
            (None, None) => None,
        };
        if kind == BackendKind::Openai
            && api_key.is_none()
            && b.api_key.is_none()
            && b.api_key_env.is_none()
        {
            cx.err(&b.kind, &f("api_key"), "an openai backend needs api_key or api_key_env (the client's key is never forwarded)");
        }
        let host_header = parsed.host_header();
        let mut endpoint = |v: &Option<Spanned<String>>,
                            field: &str,
                            default_port: Option<u16>|
         -> Option<Endpoint> {
            let (u, at) = match (v, default_port) {
                (Some(v), _) => match parse_url(v.get_ref()) {
                    Some(u) => (u, v),
                    None => {
                        cx.err(
                            v,
                            &f(field),
                            "expected http://host[:port][/prefix] or https://…",
                        );
                        return None;
                    }
                },
                // MindIE's management and metrics listeners default to the next two ports of
                // the business listener (1025 → 1026, 1027), same host and scheme.
                (None, Some(p)) => (
                    ParsedUrl {
                        tls: parsed.tls,
                        host: parsed.host.clone(),
                        port: p,
                        path: String::new(),
                    },
                    &b.url,
                ),
                (None, None) => return None,
            };
            let addrs: Vec<SocketAddr> = match (u.host.as_str(), u.port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    cx.err(
                        at,
                        &f(field),
                        format!("cannot resolve host {:?}: {e}", u.host),
                    );
                    Vec::new()
                }
            };
            let host_header = u.host_header();
            Some(Endpoint {
                scheme: if u.tls { Scheme::Https } else { Scheme::Http },
                host: u.host,
                port: u.port,
                addrs,
                base_path: u.path,
                host_header,
            })
        };
        let is_mindie = kind == BackendKind::Mindie && parsed.port != 0;
        let management = endpoint(
            &b.management_url,
            "management_url",
            is_mindie.then(|| parsed.port.checked_add(1)).flatten(),
        );
        let metrics = endpoint(
            &b.metrics_url,
            "metrics_url",
            is_mindie.then(|| parsed.port.checked_add(2)).flatten(),
        );
        let max_inflight = cx.num(&b.max_inflight, &f("max_inflight"), 0, 0, 1_000_000) as u32;
        backends.push(Backend {
            management,
            metrics,
            max_inflight,
            name,
            kind,
            scheme: if parsed.tls {
                Scheme::Https
            } else {
                Scheme::Http
            },
            host: parsed.host,
            port: parsed.port,
            addrs,
            base_path: parsed.path,
            host_header,
            api_key,
            ca_file: b.ca_file.as_ref().map(|p| base_dir.join(p.get_ref())),
        });
    }

    // Routing: settings, pools, then models (whose `backends = [...]` shorthand adds pools).
    let (routing, default_policy) = crate::routing::settings(&mut cx, &raw.routing);
    let mut pools = crate::routing::pools(&mut cx, &raw.pools, &backends, default_policy);
    let mut models = Vec::new();
    let mut model_names = HashSet::new();
    for (i, m) in raw.models.iter().enumerate() {
        let f = |k: &str| format!("models[{i}].{k}");
        let name = m.name.get_ref().clone();
        if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control()) {
            cx.err(
                &m.name,
                &f("name"),
                "must be 1..256 characters without control characters",
            );
        }
        if !model_names.insert(name.clone()) {
            cx.err(
                &m.name,
                &f("name"),
                format!("duplicate model name {name:?}"),
            );
        }
        let routing = crate::routing::model(&mut cx, i, m, &backends, &mut pools, default_policy);
        models.push(Model {
            name,
            routing,
            owned_by: m
                .owned_by
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_else(|| "tollgate".into()),
        });
    }

    let governance =
        crate::governance::compile(&mut cx, &raw.auth, &raw.quota, &raw.ledger, base_dir);

    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let listen = Listen {
        http,
        https,
        tls,
        admin: admin.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
    };
    Ok(Config {
        workers,
        io_driver,
        listen,
        limits,
        upstream,
        drain_timeout,
        access_log,
        metrics_publish_interval,
        scan,
        routing,
        backends,
        pools,
        models,
        governance,
        model_index: Default::default(),
    }
    .reindex())
}

/// Load and compile the `[scan]` rule files; their errors name the rule file, line and rule.
fn compile_scan(
    cx: &mut Ctx<'_>,
    raw: &crate::raw::RawScan,
    base_dir: &Path,
) -> Option<std::sync::Arc<tollgate_scan::RuleSet>> {
    let max = match &raw.max_match_len {
        Some(v) => {
            let n = *v.get_ref();
            if !(8..=4096).contains(&n) {
                cx.err(v, "scan.max_match_len", "must be between 8 and 4096 bytes");
                return None;
            }
            n as usize
        }
        None => tollgate_scan::DEFAULT_MAX_MATCH_LEN,
    };
    let files = raw.rules.as_ref()?;
    if files.get_ref().is_empty() {
        return None;
    }
    let paths: Vec<std::path::PathBuf> = files.get_ref().iter().map(|f| base_dir.join(f)).collect();
    match tollgate_scan::RuleSet::load(&paths, max) {
        Ok(rs) => Some(std::sync::Arc::new(rs)),
        Err(errs) => {
            for e in errs {
                let field = e
                    .rule
                    .as_ref()
                    .map(|r| format!("rule '{r}'"))
                    .unwrap_or_else(|| "scan.rules".into());
                if e.file.as_os_str().is_empty() {
                    cx.err(files, "scan.rules", e.message);
                } else {
                    cx.errors.push(ConfigError::new(
                        &e.file.display().to_string(),
                        e.line,
                        0,
                        &field,
                        e.message,
                    ));
                }
            }
            None
        }
    }
}

struct ParsedUrl {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl ParsedUrl {
    /// The Host header value: the port only when it is not the scheme's default, IPv6 bracketed.
    fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parse `http(s)://host[:port][/prefix]`. Strict: no user info, query or fragment.
fn parse_url(s: &str) -> Option<ParsedUrl> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else {
        return None;
    };
    if rest.contains(['?', '#', '@', ' ']) {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(p) => (&rest[..p], rest[p..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some(ParsedUrl {
        tls,
        host,
        port,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let u = parse_url("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8000, "")
        );
        let u = parse_url("https://api.example.com/openai/").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/openai"));
        let u = parse_url("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        for bad in [
            "ftp://x",
            "http://",
            "http://u@h",
            "http://h?x=1",
            "http://h:0",
            "http://h:99999",
            "127.0.0.1:80",
        ] {
            assert!(parse_url(bad).is_none(), "{bad}");
        }
    }
}
