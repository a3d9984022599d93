//! The Logs tab: the app's rolling log (its output as `application`, the supervisor's
//! events as `system`, the VM's as `webvm`), following new lines, filtered by level,
//! source and text (`domain::app_logs::LogFilter`), and downloadable as a text file.

use std::collections::BTreeSet;

use leptos::prelude::*;

use crate::client::apps::AppManager;
use crate::domain::app_logs::{to_text, LogFilter};
use crate::model::{ApplicationId, LogEntry, LogLevel, LogSource};
use crate::ui::download::offer_download;

/// The level choices: (value, label, the levels shown).
const LEVELS: [(&str, &str, &[LogLevel]); 4] = [
    ("all", "All levels", &[]),
    (
        "info",
        "Info and above",
        &[LogLevel::Info, LogLevel::Warn, LogLevel::Error],
    ),
    (
        "warn",
        "Warnings and errors",
        &[LogLevel::Warn, LogLevel::Error],
    ),
    ("error", "Errors", &[LogLevel::Error]),
];

/// The source choices: (value, label).
const SOURCES: [(&str, &str); 4] = [
    ("all", "All sources"),
    ("application", "Application output"),
    ("system", "Supervisor"),
    ("webvm", "VM"),
];

/// The filter the controls describe.
fn filter_of(level: &str, source: &str, text: &str) -> LogFilter {
    let levels: BTreeSet<LogLevel> = LEVELS
        .iter()
        .find(|(value, _, _)| *value == level)
        .map(|(_, _, levels)| levels.iter().copied().collect())
        .unwrap_or_default();
    let sources: BTreeSet<LogSource> = source.parse::<LogSource>().into_iter().collect();
    LogFilter {
        levels,
        sources,
        text: text.to_owned(),
    }
}

#[component]
pub fn LogsTab(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let logs = manager.app_logs(id);
    let name = Memo::new(move |_| {
        manager
            .application(id)
            .with(|app| app.as_ref().map(|app| app.name.to_string()))
            .unwrap_or_default()
    });
    let level = RwSignal::new("all".to_owned());
    let source = RwSignal::new("all".to_owned());
    let text = RwSignal::new(String::new());
    let follow = RwSignal::new(true);
    let filter = Memo::new(move |_| filter_of(&level.get(), &source.get(), &text.get()));
    let shown = Memo::new(move |_| {
        let filter = filter.get();
        logs.with(|entries| {
            filter
                .apply(entries)
                .into_iter()
                .cloned()
                .collect::<Vec<LogEntry>>()
        })
    });
    let total = Memo::new(move |_| logs.with(Vec::len));
    let list = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        shown.track();
        if follow.get() {
            if let Some(element) = list.get() {
                element.set_scroll_top(element.scroll_height());
            }
        }
    });
    // The file is made when the link is clicked, from what the filter shows.
    let download = move |event: leptos::ev::MouseEvent| {
        let body = shown.with_untracked(|entries| to_text(entries));
        offer_download(&event, "text/plain", &body);
    };
    view! {
        <section class="card" aria-labelledby="app-logs">
            <div class="card__header">
                <h2 id="app-logs">"Logs"</h2>
                <span class="muted" data-testid="log-count">
                    {move || format!("{} of {} lines", shown.with(Vec::len), total.get())}
                </span>
            </div>
            <div class="log-controls">
                <label>
                    "Level "
                    <select
                        data-testid="log-level"
                        on:change=move |event| level.set(event_target_value(&event))
                        prop:value=move || level.get()
                    >
                        {LEVELS.iter().map(|(value, label, _)| view! { <option value=*value>{*label}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Source "
                    <select
                        data-testid="log-source"
                        on:change=move |event| source.set(event_target_value(&event))
                        prop:value=move || source.get()
                    >
                        {SOURCES.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Find "
                    <input
                        type="search"
                        data-testid="log-text"
                        on:input=move |event| text.set(event_target_value(&event))
                        prop:value=move || text.get()
                    />
                </label>
                <label class="checkbox">
                    <input
                        type="checkbox"
                        data-testid="log-follow"
                        prop:checked=move || follow.get()
                        on:change=move |event| follow.set(event_target_checked(&event))
                    />
                    " Follow"
                </label>
                <a
                    class="button button--secondary"
                    data-testid="log-download"
                    href="#"
                    download=move || format!("{}.log", name.get())
                    on:click=download
                >
                    "Download"
                </a>
            </div>
            <div class="app-log" role="log" aria-live="polite" node_ref=list data-testid="app-log">
                {move || {
                    let entries = shown.get();
                    if entries.is_empty() {
                        return view! { <p class="muted">"No log lines yet."</p> }.into_any();
                    }
                    entries
                        .into_iter()
                        .map(|entry| view! {
                            <div class=format!("log-line log-line--{}", entry.level.as_str()) data-source=entry.source.as_str()>
                                <time class="log-line__time">{entry.timestamp.format("%Y-%m-%d %H:%M:%S%.3f").to_string()}</time>
                                <span class="log-line__level">{entry.level.as_str()}</span>
                                <span class="log-line__source">{entry.source.as_str()}</span>
                                <span class="log-line__message">{entry.message}</span>
                            </div>
                        })
                        .collect_view()
                        .into_any()
                }}
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controls_make_the_domain_filter() {
        let cases: [(&str, &str, &[LogLevel], &[LogSource]); 4] = [
            ("all", "all", &[], &[]),
            (
                "warn",
                "system",
                &[LogLevel::Warn, LogLevel::Error],
                &[LogSource::System],
            ),
            (
                "error",
                "application",
                &[LogLevel::Error],
                &[LogSource::Application],
            ),
            (
                "info",
                "webvm",
                &[LogLevel::Info, LogLevel::Warn, LogLevel::Error],
                &[LogSource::Webvm],
            ),
        ];
        for (level, source, levels, sources) in cases {
            let filter = filter_of(level, source, " x ");
            assert_eq!(filter.levels, levels.iter().copied().collect(), "{level}");
            assert_eq!(
                filter.sources,
                sources.iter().copied().collect(),
                "{source}"
            );
            assert_eq!(filter.text, " x ");
        }
    }
}
