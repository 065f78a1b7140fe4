//! `GET /metrics` over plain HTTP/1.x: a tiny responder, enough for a
//! Prometheus scraper or curl, with bounded reads and time per connection.

use std::time::Duration;

use chaincode_support::ChaincodeSupport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Longest request head we read.
const MAX_HEAD: usize = 8 * 1024;

/// How long one connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the runtime's metrics until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, support: ChaincodeSupport, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let support = support.clone();
                tokio::spawn(async move {
                    if tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &support))
                        .await
                        .is_err()
                    {
                        debug!("metrics connection timed out");
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                // Accept errors (too many open files) are transient; do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, support: &ChaincodeSupport) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            break;
        }
    }
    let request_line = String::from_utf8_lossy(&head);
    let mut parts = request_line.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path.split('?').next().unwrap_or("")) {
        // OpenMetrics only for a scraper that asks for it; Prometheus text
        // 0.0.4 (Fabric's format and counter names) otherwise.
        ("GET", "/metrics") if accepts_openmetrics(&request_line) => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            support.metrics().render_openmetrics(),
        ),
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            support.metrics().render(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Whether the request's `Accept` header asks for OpenMetrics.
fn accepts_openmetrics(head: &str) -> bool {
    head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("accept")
                && value
                    .to_ascii_lowercase()
                    .contains("application/openmetrics-text")
        })
    })
}
