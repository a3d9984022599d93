//! `AppError`: the one error type that crosses the server-function boundary.
//!
//! Messages are written for the person using the app; internal details stay in the server log.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// A short id that ties a message a user sees to the log line with the details.
#[cfg(feature = "ssr")]
pub fn new_reference() -> String {
    let mut reference = uuid::Uuid::new_v4().simple().to_string();
    reference.truncate(8);
    reference
}

/// Everything a server function can fail with, as the user should see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// The thing asked for does not exist (or is not visible to this workspace).
    #[error("{what} was not found.")]
    NotFound { what: String },
    /// The input broke one or more rules; `problems` lists every one of them.
    #[error("{summary}")]
    Invalid {
        summary: String,
        problems: Vec<String>,
    },
    /// The server failed; the details are in its log under `reference`.
    #[error("The server could not complete this request. Please try again; if it keeps failing, report reference {reference}.")]
    Internal { reference: String },
    /// The request never got a proper answer (network down, server restarting, bad response).
    #[error("The server could not be reached: {detail}")]
    Transport { detail: String },
    /// The request was refused for where it came from (e.g. another site's page).
    #[error("{reason}")]
    Forbidden { reason: String },
    /// The request's body is over the limit of the function it called.
    #[error("The request is too large: at most {limit_bytes} bytes are accepted here.")]
    TooLarge { limit_bytes: u64 },
    /// Too many writes from this client in a short time.
    #[error(
        "Too many changes in a short time. Please wait {retry_after_seconds} s and try again."
    )]
    RateLimited { retry_after_seconds: u64 },
    /// The server is overloaded or its database is busy or unreachable right now.
    #[error("The server is busy right now. Please try again in a moment.")]
    Unavailable,
}

impl AppError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn invalid(summary: impl Into<String>, problems: Vec<String>) -> Self {
        Self::Invalid {
            summary: summary.into(),
            problems,
        }
    }

    /// Logs an internal failure and returns the user-facing error that points at the log line.
    #[cfg(feature = "ssr")]
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let reference = new_reference();
        tracing::error!(%reference, %error, "request failed");
        Self::Internal { reference }
    }

    /// A short title for an error panel.
    pub fn title(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "Not found",
            Self::Invalid { .. } => "Please check your input",
            Self::Internal { .. } => "Something went wrong",
            Self::Transport { .. } => "Connection problem",
            Self::Forbidden { .. } => "Not allowed",
            Self::TooLarge { .. } => "Too large",
            Self::RateLimited { .. } => "Slow down",
            Self::Unavailable => "Server busy",
        }
    }

    /// The HTTP status a response carrying this error has.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Invalid { .. } => 400,
            Self::Internal { .. } => 500,
            // Only the client makes these; a server-side one means the request was unreadable.
            Self::Transport { .. } => 400,
            Self::Forbidden { .. } => 403,
            Self::TooLarge { .. } => 413,
            Self::RateLimited { .. } => 429,
            Self::Unavailable => 503,
        }
    }

    /// The reasons a mirror write is refused for good, when this error is such a refusal
    /// (the rules, its size, the site policy: resending can't help); `None` when it failed
    /// for a passing reason and is worth sending again. The server answers a batch's entries
    /// with it, and the browser reads a whole request's failure with it.
    pub fn mirror_refusal(&self) -> Option<Vec<String>> {
        match self {
            Self::Invalid { summary, problems } if problems.is_empty() => {
                Some(vec![summary.clone()])
            }
            Self::Invalid { problems, .. } => Some(problems.clone()),
            Self::TooLarge { .. } | Self::Forbidden { .. } => Some(vec![self.to_string()]),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport {
            detail: value.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_friendly() {
        let cases = [
            (
                AppError::not_found("Application “blog”"),
                "Application “blog” was not found.",
            ),
            (
                AppError::invalid("The name is not valid.", vec!["too short".into()]),
                "The name is not valid.",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn errors_round_trip_through_json() {
        let error = AppError::invalid("bad", vec!["a".into(), "b".into()]);
        let bytes = <AppError as FromServerFnError>::ser(&error);
        assert_eq!(<AppError as FromServerFnError>::de(bytes), error);
    }

    #[test]
    fn each_error_has_its_status() {
        let cases = [
            (AppError::not_found("x"), 404),
            (AppError::invalid("x", Vec::new()), 400),
            (
                AppError::Internal {
                    reference: "r".into(),
                },
                500,
            ),
            (AppError::Transport { detail: "d".into() }, 400),
            (AppError::Forbidden { reason: "r".into() }, 403),
            (AppError::TooLarge { limit_bytes: 1 }, 413),
            (
                AppError::RateLimited {
                    retry_after_seconds: 2,
                },
                429,
            ),
            (AppError::Unavailable, 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status_code(), status, "{error:?}");
        }
    }

    #[test]
    fn transport_failures_become_app_errors() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Request("offline".into()));
        assert_eq!(error.title(), "Connection problem");
        assert!(error.to_string().contains("offline"));
    }

    #[test]
    fn mirror_refusals_table() {
        let cases = [
            (
                AppError::invalid("Not saved.", vec!["port 80".into(), "name".into()]),
                Some(vec!["port 80".to_string(), "name".to_string()]),
            ),
            (
                AppError::invalid("Not saved.", Vec::new()),
                Some(vec!["Not saved.".to_string()]),
            ),
            (
                AppError::TooLarge { limit_bytes: 10 },
                Some(vec![AppError::TooLarge { limit_bytes: 10 }.to_string()]),
            ),
            (
                AppError::Forbidden {
                    reason: "cross-site".into(),
                },
                Some(vec!["cross-site".to_string()]),
            ),
            (AppError::Unavailable, None),
            (
                AppError::RateLimited {
                    retry_after_seconds: 3,
                },
                None,
            ),
            (AppError::not_found("The workspace"), None),
            (AppError::internal("disk"), None),
        ];
        for (error, expected) in cases {
            assert_eq!(error.mirror_refusal(), expected, "{error:?}");
        }
    }
}
