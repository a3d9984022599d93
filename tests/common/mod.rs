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
pub async fn serve_router(router: axum::Router, limits: &EdgeConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let limits = limits.clone();
    tokio::spawn(async move {
        webvm_appserver::server::edge::serve::serve(
            listener,
            router,
            &limits,
            std::future::pending(),
        )
        .await
        .expect("serve");
    });
    addr
}
