//! Small reusable view pieces: page header, loading and error panels, empty states, badges,
//! stats, a progress bar and a live log.

use leptos::prelude::*;

use crate::error::AppError;
use crate::ui::tone::{BadgeTone, Tone};

/// A page's title block: a heading and one line saying what the page is for.
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(into)] lead: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="page-header">
            <div>
                <h1>{title}</h1>
                <p class="lead">{lead}</p>
            </div>
            {children.map(|children| view! { <div class="page-header__actions">{children()}</div> })}
        </div>
    }
}

/// Shown while a page's data loads.
#[component]
pub fn Loading(#[prop(optional, into)] label: Option<String>) -> impl IntoView {
    let label = label.unwrap_or_else(|| "Loading…".to_string());
    view! {
        <div class="loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            <span>{label}</span>
        </div>
    }
}

/// A friendly error panel: a title, the message, and every listed problem.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    let problems = match &error {
        AppError::Invalid { problems, .. } => problems.clone(),
        _ => Vec::new(),
    };
    view! {
        <div class="panel panel--error" role="alert">
            <h2 class="panel__title">{error.title()}</h2>
            <p>{error.to_string()}</p>
            {(!problems.is_empty())
                .then(|| {
                    view! {
                        <ul class="problems">
                            {problems.into_iter().map(|problem| view! { <li>{problem}</li> }).collect_view()}
                        </ul>
                    }
                })}
        </div>
    }
}

/// What to show where there is nothing yet: what this place is for and what to do first.
#[component]
pub fn EmptyState(
    title: &'static str,
    #[prop(into)] body: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <section class="empty-state" aria-label=title>
            <div class="empty-state__icon" aria-hidden="true">"◇"</div>
            <h2>{title}</h2>
            <p>{body}</p>
            {children.map(|children| view! { <div class="empty-state__next">{children()}</div> })}
        </section>
    }
}

/// What a [`StatusBadge`] shows: a tone and the status's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Badge {
    tone: Tone,
    label: &'static str,
}

impl<S: BadgeTone> From<S> for Badge {
    fn from(status: S) -> Self {
        Self {
            tone: status.tone(),
            label: status.label(),
        }
    }
}

/// A coloured pill for a status such as `running` or `error`.
#[component]
pub fn StatusBadge(#[prop(into)] status: Badge) -> impl IntoView {
    view! { <span class=format!("badge badge--{}", status.tone.as_str())>{status.label}</span> }
}

/// One figure with its label, for the stat grids.
#[component]
pub fn Stat(
    label: &'static str,
    #[prop(into)] value: String,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    view! {
        <div class="stat">
            <dt>{label}</dt>
            <dd>
                <span class="stat__value">{value}</span>
                {hint.map(|hint| view! { <span class="stat__hint">{hint}</span> })}
            </dd>
        </div>
    }
}

/// A labelled progress bar, 0–100, with what is happening next to the figure.
#[component]
pub fn ProgressBar(
    label: &'static str,
    #[prop(into)] percent: Signal<u8>,
    #[prop(optional, into)] detail: Option<Signal<String>>,
) -> impl IntoView {
    view! {
        <div class="vm-progress">
            <span class="vm-progress__label">
                {move || match detail {
                    Some(detail) => format!("{}% — {}", percent.get(), detail.get()),
                    None => format!("{}%", percent.get()),
                }}
            </span>
            <progress max="100" prop:value=move || percent.get() aria-label=label></progress>
        </div>
    }
}

/// A log that follows its newest line as lines arrive.
#[component]
pub fn LiveLog(label: &'static str, #[prop(into)] text: Signal<String>) -> impl IntoView {
    let log_box = NodeRef::<leptos::html::Pre>::new();
    Effect::new(move |_| {
        text.track();
        if let Some(element) = log_box.get() {
            element.set_scroll_top(element.scroll_height());
        }
    });
    view! {
        <pre class="operation-log" aria-live="polite" aria-label=label node_ref=log_box>
            {move || text.get()}
        </pre>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::{ApplicationStatus, OperationStatus, WebVMState};

    fn badge_html(status: impl Into<Badge>) -> String {
        let status = status.into();
        view! { <StatusBadge status /> }.to_html()
    }

    #[test]
    fn a_badge_is_a_pill_with_its_tone_and_text() {
        let cases = [
            (
                badge_html(WebVMState::Ready),
                r#"<span class="badge badge--good">ready</span>"#,
            ),
            (
                badge_html(ApplicationStatus::RuntimeMissing),
                r#"<span class="badge badge--bad">runtime-missing</span>"#,
            ),
            (
                badge_html(WebVMState::Booting),
                r#"<span class="badge badge--busy">booting</span>"#,
            ),
            (
                badge_html(OperationStatus::Pending),
                r#"<span class="badge badge--neutral">pending</span>"#,
            ),
        ];
        for (html, expected) in cases {
            assert_eq!(html, expected);
        }
    }
}
