//! The server functions the browser's application registry calls, handed to it as a
//! `client::apps::ServerLink` (the client layer can't import this one).

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::client::apps::{MirrorFailure, ServerLink};
use crate::error::AppError;
use crate::model::catalog::RuntimeCatalog;
use crate::model::{MirrorAnswer, MirrorEntry, StatusReport};

/// The registry's link to this server's functions.
pub struct ServerFunctions;

impl ServerLink for ServerFunctions {
    fn open_workspace(&self) -> LocalBoxFuture<'static, Result<(), String>> {
        async {
            super::open_workspace()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
        .boxed_local()
    }

    fn catalog(&self) -> LocalBoxFuture<'static, Result<RuntimeCatalog, String>> {
        async {
            super::package_catalog()
                .await
                .map_err(|error| error.to_string())
        }
        .boxed_local()
    }

    fn apply_writes(
        &self,
        writes: Vec<MirrorEntry>,
    ) -> LocalBoxFuture<'static, Result<Vec<MirrorAnswer>, MirrorFailure>> {
        async move {
            let values = writes
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| MirrorFailure::Failed(error.to_string()))?;
            super::applications::apply_mirror_writes(values)
                .await
                .map_err(mirror_failure)
        }
        .boxed_local()
    }

    fn report_status(
        &self,
        reports: Vec<StatusReport>,
    ) -> LocalBoxFuture<'static, Result<(), String>> {
        async move {
            super::status_pages::report_status(reports)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
        .boxed_local()
    }
}

/// What a server function's error means for a queued mirror write: a request that never
/// reached the server is unreachable; otherwise the error's own verdict.
fn mirror_failure(error: AppError) -> MirrorFailure {
    match error {
        AppError::Transport { detail } => MirrorFailure::Unreachable(detail),
        error => match error.mirror_refusal() {
            Some(reasons) => MirrorFailure::Refused(reasons),
            None => MirrorFailure::Failed(error.to_string()),
        },
    }
}
