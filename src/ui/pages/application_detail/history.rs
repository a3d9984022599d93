//! The History tab: the app's deployments, newest first, each with status, progress, source,
//! commit, duration, error and its log; the running one with a live progress bar and a log
//! that follows its last line.

use leptos::prelude::*;

use crate::client::apps::AppManager;
use crate::model::{ApplicationId, DeploymentOperation, DeploymentStatus};
use crate::ui::components::{LiveLog, ProgressBar, StatusBadge};
use crate::ui::format::timestamp;

fn finished(status: DeploymentStatus) -> bool {
    matches!(
        status,
        DeploymentStatus::Completed | DeploymentStatus::Failed
    )
}

/// How long a deployment took, or "—" while it runs.
pub fn took(operation: &DeploymentOperation) -> String {
    operation
        .end_time
        .map(|end| {
            let ms = (end - operation.start_time).num_milliseconds().max(0);
            format!("{:.1} s", ms as f64 / 1000.0)
        })
        .unwrap_or_else(|| "—".to_string())
}

/// Where a deployment's files came from, in words.
pub fn source_text(operation: &DeploymentOperation) -> String {
    match (operation.rollback_to, operation.source_type) {
        (Some(target), _) => format!("roll back to {}", short(&target.to_string())),
        (None, Some(source)) => source.as_str().to_string(),
        (None, None) => "—".to_string(),
    }
}

fn short(text: &str) -> String {
    text.chars().take(8).collect()
}

/// The deployment in progress, if any: status, progress and the live log.
#[component]
pub fn ActiveDeployment(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let book = manager.book;
    let head = Memo::new(move |_| {
        book.with(|book| {
            book.active_deployment(id)
                .map(|op| (op.id, op.status, op.progress))
        })
    });
    let log = Memo::new(move |_| {
        manager.log_written.track();
        book.with(|book| {
            book.active_deployment(id)
                .map(|op| {
                    let skip = op.logs.len().saturating_sub(400);
                    op.logs[skip..].join("\n")
                })
                .unwrap_or_default()
        })
    });
    let percent = Signal::derive(move || head.with(|head| head.map_or(0, |head| head.2)));
    let detail = Signal::derive(move || {
        head.with(|head| {
            head.map(|head| head.1.as_str().to_string())
                .unwrap_or_default()
        })
    });
    view! {
        <Show when=move || head.with(Option::is_some)>
            <section class="card deployment-active" data-testid="deployment-active" aria-labelledby="deployment-active-title">
                <div class="card__header">
                    <h2 class="card__title" id="deployment-active-title">"Deploying"</h2>
                    {move || head.get().map(|head| view! { <StatusBadge status=head.1 /> })}
                </div>
                <ProgressBar label="Deployment progress" percent detail />
                <LiveLog label="Deployment log" text=log />
            </section>
        </Show>
    }
}

#[component]
pub fn HistoryTab(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let book = manager.book;
    let current = manager.current_release(id);
    // What identifies the finished part of the history, cheap on every log line: no logs
    // are cloned unless a finished deployment's changed (so open logs stay open).
    let key = Memo::new(move |_| {
        manager.log_written.track();
        book.with(|book| {
            book.history(id)
                .iter()
                .filter(|op| finished(op.status))
                .map(|op| (op.id, op.status, op.logs.len()))
                .collect::<Vec<_>>()
        })
    });
    let operations = Memo::new(move |_| {
        key.track();
        book.with_untracked(|book| {
            book.history(id)
                .iter()
                .rev()
                .filter(|op| finished(op.status))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <ActiveDeployment id />
        <section class="deployment-history" aria-labelledby="deployment-history-title">
            <h2 id="deployment-history-title">"Deployment history"</h2>
            <Show
                when=move || operations.with(|ops| !ops.is_empty())
                fallback=|| view! { <p class="muted">"No deployments yet."</p> }
            >
                <div class="table-wrap">
                    <table class="table history-table">
                        <thead>
                            <tr>
                                <th scope="col">"Started"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Source"</th>
                                <th scope="col">"Commit"</th>
                                <th scope="col">"Took"</th>
                                <th scope="col">"Log"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                let live = current.get();
                                operations.get().into_iter().map(|op| {
                                    let lines = op.logs.len();
                                    let is_current = live == Some(op.id);
                                    view! {
                                        <tr data-deployment=op.id.to_string() data-status=op.status.as_str()>
                                            <th scope="row" data-label="Started">
                                                {timestamp(&op.start_time)}
                                                {is_current.then(|| view! { <span class="badge badge--good release-current">"current"</span> })}
                                                {op.error.clone().map(|error| view! { <span class="cell-note inline-error">{error}</span> })}
                                            </th>
                                            <td data-label="Status">
                                                <StatusBadge status=op.status />
                                                <span class="cell-note">{format!("{}%", op.progress)}</span>
                                            </td>
                                            <td data-label="Source">
                                                {source_text(&op)}
                                                {op.file_count.map(|count| view! {
                                                    <span class="cell-note">{format!("{count} files, {:.1} MiB", op.total_bytes.unwrap_or(0) as f64 / 1_048_576.0)}</span>
                                                })}
                                            </td>
                                            <td data-label="Commit">
                                                {op.commit.clone().map(|sha| view! { <code class="commit" title=sha.clone()>{short(&sha)}</code> }.into_any())
                                                    .unwrap_or_else(|| "—".into_any())}
                                            </td>
                                            <td data-label="Took">{took(&op)}</td>
                                            <td data-label="Log">
                                                <details>
                                                    <summary>{format!("{lines} lines")}</summary>
                                                    <pre class="operation-log">{op.logs.join("\n")}</pre>
                                                </details>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()
                            }}
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration};
    use uuid::Uuid;

    #[test]
    fn durations_sources_and_tones() {
        let start = DateTime::default();
        let mut op = DeploymentOperation::new(Uuid::nil(), Uuid::nil(), start);
        assert_eq!(
            (took(&op), source_text(&op)),
            ("—".to_string(), "—".to_string())
        );
        op.end_time = Some(start + Duration::milliseconds(2_350));
        op.source_type = Some(crate::model::DeploymentSource::Github);
        assert_eq!(
            (took(&op), source_text(&op)),
            ("2.4 s".to_string(), "github".to_string())
        );
        op.rollback_to = Some(Uuid::from_u128(0xabcdef12_0000_0000_0000_000000000000));
        assert_eq!(source_text(&op), "roll back to abcdef12");
    }
}
