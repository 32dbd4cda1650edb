//! Phase 2, admit: match the route against the allowlist of API paths and methods. Only these
//! paths exist; anything else is a JSON 404 and is never proxied (clients never choose the
//! upstream path). Later issues add IP rules, API keys and limits here — all before the body is
//! read.

use tollgate_core::{Error, ErrorKind};
use tollgate_http::{Method, RequestHead};

/// A proxied OpenAI endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
}

impl Api {
    /// Upstream path of this endpoint (appended to the backend's base path).
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
            Api::Embeddings => "/v1/embeddings",
        }
    }
}

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Proxied.
    Api(Api),
    /// `GET /v1/models`, answered from config.
    ListModels,
    /// `GET /v1/models/{id}`, answered from config.
    GetModel(String),
    /// `GET /health`: the vLLM/SGLang liveness route that benchmark tools and load balancers
    /// probe on the serving port (200, or 503 while draining). Same answer as the admin
    /// listener's `/healthz`.
    Health,
}

/// Match `path` (query already stripped) and method.
pub fn admit(head: &RequestHead, path: &str) -> Result<Route, Error> {
    let (route, method_ok) = match path {
        "/v1/chat/completions" => (Route::Api(Api::Chat), head.method == Method::Post),
        "/v1/completions" => (Route::Api(Api::Completions), head.method == Method::Post),
        "/v1/embeddings" => (Route::Api(Api::Embeddings), head.method == Method::Post),
        "/v1/models" => (Route::ListModels, head.method == Method::Get),
        "/health" => (Route::Health, head.method == Method::Get),
        p => match p.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() && !id.contains('/') => (
                Route::GetModel(percent_decode(id)),
                head.method == Method::Get,
            ),
            _ => {
                return Err(Error::client(
                    ErrorKind::NotFound,
                    "Unknown path; this gateway serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /health",
                ));
            }
        },
    };
    if !method_ok {
        return Err(Error::client(
            ErrorKind::MethodNotAllowed,
            "Method not allowed for this path",
        ));
    }
    Ok(route)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
