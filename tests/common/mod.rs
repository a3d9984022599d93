//! Shared by the integration tests: serves the real router on a free loopback port.

pub mod database;
use std::net::SocketAddr;
use webvm_appserver::host::build_router;

use webvm_appserver::server::config::{Config, EdgeConfig};

/// Builds the full router for `config`, serves it on 127.0.0.1 and returns its base URL.
// Each test binary compiles this module; some serve their own router instead.
#[allow(dead_code)]
pub async fn serve_on_loopback(config: &Config) -> String {
    let router = build_router(config).await.expect("router builds");
    format!("http://{}", serve_router(router, &config.edge).await)
}

/// Serves `router` through the real socket loop (with `limits`) on a free loopback port.
///
/// The server gets a multi-thread runtime of its own on its own thread, as in production
/// (`#[tokio::main]`), instead of sharing the test's `#[tokio::test]` current-thread runtime
/// with the test's HTTP client: under CPU load a page render on the shared runtime could be
/// left unwoken until the 30 s request timeout answered 503.
pub async fn serve_router(router: axum::Router, limits: &EdgeConfig) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = listener.local_addr().expect("local addr");
    let limits = limits.clone();
    std::thread::Builder::new()
        .name(format!("test-server-{addr}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                webvm_appserver::server::edge::serve::serve(
                    listener,
                    router,
                    &limits,
                    std::future::pending(),
                )
                .await
                .expect("serve");
            });
        })
        .expect("server thread");
    addr
}
