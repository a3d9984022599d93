//! The socket loop under the router: header-read timeout, connection limits, graceful stop.
//!
//! `axum::serve` has no header-read timeout and no connection limit, so a slowloris client
//! or a connection flood could hold the server. This loop serves each connection with
//! hyper-util's HTTP/1 + HTTP/2 builder and a timer, admits a connection only while the
//! global and per-client limits allow, and hands the client's address to the router as
//! `ConnectInfo` (the rate limits key on it).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::server::config::EdgeConfig;

/// How long open requests may finish after a stop signal before their connections are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Counts open connections, in all and per client address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; its slot is given back when it is dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    client: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            open: Mutex::new(OpenConnections::default()),
        })
    }

    /// A slot for a new connection from `client`, or `None` when a limit is reached.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_client = open.per_client.get(&client).copied().unwrap_or(0);
        if open.total >= self.max_total || from_client >= self.max_per_client {
            return None;
        }
        open.total += 1;
        open.per_client.insert(client, from_client + 1);
        Some(ConnectionSlot {
            limiter: Arc::clone(self),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish
/// (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &EdgeConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limiter = ConnectionLimiter::new(limits.max_connections, limits.max_connections_per_client);
    let header_read_timeout = Duration::from_secs(limits.header_read_timeout_secs.max(1));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_concurrent_streams(64);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut refused_logged_at: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // moment instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limiter.admit(remote.ip()) else {
            // Logged at most once a second, so a flood can't flood the log too.
            let now = tokio::time::Instant::now();
            if refused_logged_at.is_none_or(|at| now.duration_since(at) > Duration::from_secs(1)) {
                tracing::warn!(client = %remote.ip(), open = limiter.open(), "connection limit reached: connection refused");
                refused_logged_at = Some(now);
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let first_byte_timeout = header_read_timeout;
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(remote));
                    request
                });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header-read timer starts with the request head; the HTTP version
            // sniffing before it has none, so a client that connects and sends nothing at all
            // is given the same time to start.
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte_timeout, stream.peek(&mut probe)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, client = %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("open connections did not finish within {SHUTDOWN_GRACE:?}; closing them");
        }
    }
    Ok(())
}

/// The address a request came from (the socket's peer), when the serve loop recorded it.
pub fn client_address<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_in_all_and_per_client() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = limiter.admit(a).expect("first from a");
        let second = limiter.admit(a).expect("second from a");
        assert!(
            limiter.admit(a).is_none(),
            "a third from one client is refused"
        );
        let third = limiter.admit(b).expect("another client still gets in");
        assert!(limiter.admit(b).is_none(), "the total is reached");
        drop(first);
        assert_eq!(limiter.open(), 2);
        let again = limiter.admit(a).expect("a slot came back");
        drop((second, third, again));
        assert_eq!(limiter.open(), 0);
        assert!(limiter.open.lock().expect("lock").per_client.is_empty());
    }
}
