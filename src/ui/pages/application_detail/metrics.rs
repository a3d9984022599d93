//! The metrics panel of the Overview tab: the app's memory, CPU and disk (sampled in the
//! guest), its traffic through `/apps/<name>/` (requests a minute, average and p95 response
//! time, error rate), and SVG charts of the live samples and of the 24-hour history.

use leptos::prelude::*;

use crate::client::apps::AppManager;
use crate::model::{ApplicationId, PerformanceSnapshot};
use crate::ui::chart::{ChartPoint, LineChart};
use crate::ui::format::megabytes;

/// A size in MB, small ones in KB (a static site's folder is a few KB).
fn size(mb: f64) -> String {
    if mb > 0.0 && mb < 1.0 {
        format!("{:.0} KB", (mb * 1024.0).max(1.0))
    } else {
        megabytes(mb)
    }
}

fn percent(value: f64) -> String {
    format!("{value:.0} %")
}

fn milliseconds(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn per_minute(value: f64) -> String {
    format!("{value:.0}/min")
}

/// One series of snapshots as chart points.
fn series(
    snapshots: &[PerformanceSnapshot],
    value: fn(&PerformanceSnapshot) -> f64,
) -> Vec<ChartPoint> {
    snapshots
        .iter()
        .map(|snapshot| (snapshot.timestamp.timestamp_millis(), value(snapshot)))
        .collect()
}

/// The four charts of one set of snapshots.
#[component]
fn ChartSet(
    id: &'static str,
    snapshots: Signal<Vec<PerformanceSnapshot>>,
    empty: &'static str,
) -> impl IntoView {
    let points = move |value: fn(&PerformanceSnapshot) -> f64| {
        Signal::derive(move || snapshots.with(|snapshots| series(snapshots, value)))
    };
    view! {
        <div class="chart-grid" data-testid=format!("charts-{id}")>
            <LineChart title="Memory" id=format!("{id}-memory") points=points(|s| s.memory) format=size empty=empty />
            <LineChart title="CPU" id=format!("{id}-cpu") points=points(|s| s.cpu) format=percent empty=empty />
            <LineChart title="Requests" id=format!("{id}-requests") points=points(|s| s.requests) format=per_minute empty=empty />
            <LineChart title="Response time" id=format!("{id}-response") points=points(|s| s.response_time) format=milliseconds empty=empty />
        </div>
    }
}

/// The app's current figures, as the record has them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    memory_mb: f64,
    cpu_percent: f64,
    disk_mb: f64,
    requests_per_minute: f64,
    response_ms: f64,
    error_percent: f64,
}

/// Figures and charts of one app.
#[component]
pub fn MetricsPanel(id: ApplicationId) -> impl IntoView {
    let manager = AppManager::expect();
    let application = manager.application(id);
    let figures = Memo::new(move |_| {
        application.with(|app| {
            app.as_ref().map(|app| {
                let metrics = &app.metrics;
                Figures {
                    memory_mb: metrics.memory_usage,
                    cpu_percent: metrics.cpu_usage,
                    disk_mb: metrics.disk_usage,
                    requests_per_minute: metrics.request_rate,
                    response_ms: metrics.response_time,
                    error_percent: metrics.error_rate,
                }
            })
        })
    });
    let p95 = Memo::new(move |_| {
        manager
            .run_notes
            .with(|notes| notes.get(&id).map_or(0.0, |notes| notes.p95_response_ms))
    });
    let live = Signal::derive(move || {
        manager.run_notes.with(|notes| {
            notes
                .get(&id)
                .map(|notes| notes.live.iter().cloned().collect())
                .unwrap_or_default()
        })
    });
    let history = Signal::derive(move || {
        application.with(|app| {
            app.as_ref()
                .map(|app| app.metrics.performance_history.clone())
                .unwrap_or_default()
        })
    });
    let figure = move |pick: fn(&Figures) -> String| {
        move || figures.with(|figures| figures.as_ref().map(pick).unwrap_or_else(|| "—".to_owned()))
    };
    view! {
        <section class="card metrics-panel" aria-labelledby="metrics-heading" data-testid="app-metrics">
            <div class="card__header">
                <h2 id="metrics-heading">"Resources and traffic"</h2>
            </div>
            <dl class="stats stats--4">
                <div class="stat" data-testid="app-memory">
                    <dt>"Memory"</dt>
                    <dd><span class="stat__value">{figure(|f| size(f.memory_mb))}</span></dd>
                </div>
                <div class="stat" data-testid="app-cpu">
                    <dt>"CPU"</dt>
                    <dd><span class="stat__value">{figure(|f| percent(f.cpu_percent))}</span></dd>
                </div>
                <div class="stat" data-testid="app-disk">
                    <dt>"Disk"</dt>
                    <dd><span class="stat__value">{figure(|f| size(f.disk_mb))}</span><span class="stat__hint">"every release"</span></dd>
                </div>
                <div class="stat" data-testid="app-request-rate">
                    <dt>"Request rate"</dt>
                    <dd><span class="stat__value">{figure(|f| per_minute(f.requests_per_minute))}</span><span class="stat__hint">"last minute"</span></dd>
                </div>
                <div class="stat" data-testid="app-response-time">
                    <dt>"Response time"</dt>
                    <dd>
                        <span class="stat__value">{figure(|f| milliseconds(f.response_ms))}</span>
                        <span class="stat__hint">{move || format!("average; p95 {}", milliseconds(p95.get()))}</span>
                    </dd>
                </div>
                <div class="stat" data-testid="app-error-rate">
                    <dt>"Errors"</dt>
                    <dd><span class="stat__value">{figure(|f| percent(f.error_percent))}</span><span class="stat__hint">"5xx and bridge failures"</span></dd>
                </div>
            </dl>
            <h3 class="metrics-panel__subheading">"Live: one sample every 15 s while this page runs the app"</h3>
            <ChartSet id="live" snapshots=live empty="no sample yet: the first comes 15 s after start" />
            <h3 class="metrics-panel__subheading">"Last 24 hours: one sample every 5 minutes"</h3>
            <ChartSet id="history" snapshots=history empty="no history yet" />
        </section>
    }
}
