//! Names of the request-pipeline phases, in the order `handle()` runs them. Used in logs and in
//! metric labels ("which phase answered this request").

/// One phase of the request pipeline (see ARCHITECTURE.md "Request pipeline").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Strict HTTP/1.1 framing, limits and read timeouts.
    Accept,
    /// Route match, model permission, limits.
    Admit,
    /// Parse the JSON body once; later: scan with the request rule set.
    InspectRequest,
    /// Pick a backend for the model.
    Select,
    /// Rewrite and send the request upstream.
    Forward,
    /// Stream or buffer the reply back to the client.
    Relay,
    /// Account, log and record metrics, exactly once per request.
    Finish,
}

impl Phase {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Accept => "accept",
            Phase::Admit => "admit",
            Phase::InspectRequest => "inspect_request",
            Phase::Select => "select",
            Phase::Forward => "forward",
            Phase::Relay => "relay",
            Phase::Finish => "finish",
        }
    }
}
