//! The admin API of `cclaunch peer` (`proto/admin.proto`, package
//! `cclaunch.admin`): the server over a [`ChaincodeSupport`] ([`AdminService`]),
//! its two transports ([`listen`]: a Unix socket, and TCP with mutual TLS),
//! and the client the other commands use ([`client`]).
//!
//! # Guarantees
//! - There is no plaintext TCP transport: the Unix socket is mode `0600` in
//!   a `0700` state directory, and TCP always requires the peer's admin
//!   client certificate.
//! - No reply grows with the registry: `Ps` is paged by count and bytes, and
//!   both sides set [`MAX_MESSAGE_BYTES`].

pub mod client;
pub mod listen;

use std::pin::Pin;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_support::{ChaincodeSupport, SupportError, SupportEvent, SupportEventKind, TxKind};
use futures::{Stream, StreamExt};
use launch_fsm::LaunchError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The code generated from `proto/admin.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("cclaunch.admin");
}

pub use proto::admin_client::AdminClient;
use proto::admin_server::{Admin, AdminServer};
use proto::*;

/// The largest message either side of the admin API sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// `Ps` entries per page when the request leaves it to the server.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// The most `Ps` entries per page, whatever the request asks.
pub const MAX_PAGE_SIZE: u32 = 5_000;
/// A `Ps` page's encoded size stays under this (far below [`MAX_MESSAGE_BYTES`]).
pub const PAGE_BYTES: usize = 1 << 20;
/// A `last_error` longer than this is cut, so that one entry always fits a page.
pub const MAX_ERROR_BYTES: usize = 8 << 10;

/// Serves the admin API over a runtime. Watch streams end when `shutdown`
/// is cancelled, so that the server can stop gracefully.
#[derive(Debug, Clone)]
pub struct AdminService {
    support: ChaincodeSupport,
    shutdown: CancellationToken,
}

impl AdminService {
    /// The tonic service over `support`, with explicit message size limits.
    pub fn server(support: ChaincodeSupport, shutdown: CancellationToken) -> AdminServer<Self> {
        AdminServer::new(Self { support, shutdown })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// One page of `all`: entries after `token` in name order, at most
/// `page_size` (0 = [`DEFAULT_PAGE_SIZE`], capped at [`MAX_PAGE_SIZE`]) and
/// at most `byte_budget` encoded bytes (but never empty while entries remain).
pub fn page(
    mut all: Vec<ChaincodeInfo>,
    page_size: u32,
    token: &str,
    byte_budget: usize,
) -> PsReply {
    use prost::Message;
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    } as usize;
    all.sort_by(|a, b| a.chaincode.cmp(&b.chaincode));
    let start = if token.is_empty() {
        0
    } else {
        all.partition_point(|cc| cc.chaincode.as_str() <= token)
    };
    let mut chaincodes = Vec::new();
    let mut bytes = 0;
    let mut rest = all.into_iter().skip(start).peekable();
    while let Some(next) = rest.peek() {
        // A repeated field costs its tag, a length and the message.
        let cost = next.encoded_len() + 1 + prost::length_delimiter_len(next.encoded_len());
        if chaincodes.len() >= size || (!chaincodes.is_empty() && bytes + cost > byte_budget) {
            break;
        }
        bytes += cost;
        chaincodes.extend(rest.next());
    }
    let next_page_token = match (rest.peek(), chaincodes.last()) {
        (Some(_), Some(last)) => last.chaincode.clone(),
        _ => String::new(),
    };
    PsReply {
        chaincodes,
        next_page_token,
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [...]");
    }
    text
}

fn parse_name(text: &str) -> Result<ChaincodeName, Status> {
    text.parse()
        .map_err(|e: chaincode_proto::NameError| Status::invalid_argument(e.to_string()))
}

/// The gRPC status of a runtime error; the message is the error's own text
/// (it names the chaincode and the phase).
fn status_of(error: &SupportError) -> Status {
    let code = match error {
        SupportError::Launch {
            source: LaunchError::NotFound { .. },
            ..
        } => tonic::Code::NotFound,
        SupportError::Launch {
            source: LaunchError::Timeout { .. },
            ..
        }
        | SupportError::ExecuteTimeout { .. } => tonic::Code::DeadlineExceeded,
        SupportError::ShuttingDown { .. } => tonic::Code::Unavailable,
        _ => tonic::Code::Aborted,
    };
    Status::new(code, error.to_string())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The admin API's view of a runtime event.
pub fn watch_event(event: &SupportEvent) -> Option<WatchEvent> {
    let mut out = WatchEvent {
        chaincode: event.chaincode.to_string(),
        unix_ms: unix_ms(),
        ..Default::default()
    };
    match &event.kind {
        SupportEventKind::Phase { phase, generation } => {
            out.phase = phase.to_string();
            out.generation = generation.0;
        }
        SupportEventKind::Progress(line) => out.progress = line.clone(),
        // Kinds added later are not shown by older clients.
        _ => return None,
    }
    Some(out)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn launch(
        &self,
        request: Request<LaunchRequest>,
    ) -> Result<Response<LaunchReply>, Status> {
        let chaincode = parse_name(&request.get_ref().chaincode)?;
        let started = Instant::now();
        let ready = self
            .support
            .launch(&chaincode)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(LaunchReply {
            chaincode: chaincode.to_string(),
            generation: ready.generation().0,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeReply>, Status> {
        let request = request.into_inner();
        let chaincode = parse_name(&request.chaincode)?;
        let kind = if request.init {
            TxKind::Init
        } else {
            TxKind::Transaction
        };
        let input = ChaincodeInput {
            args: request.args,
            is_init: request.init,
            ..Default::default()
        };
        let response = self
            .support
            .execute(&chaincode, kind, &input)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(InvokeReply {
            status: response.status,
            message: response.message,
            payload: response.payload,
        }))
    }

    async fn stop(&self, request: Request<StopRequest>) -> Result<Response<StopReply>, Status> {
        let chaincode = parse_name(&request.get_ref().chaincode)?;
        self.support
            .stop(&chaincode)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(StopReply {}))
    }

    async fn ps(&self, request: Request<PsRequest>) -> Result<Response<PsReply>, Status> {
        let request = request.into_inner();
        let all = self
            .support
            .status()
            .into_iter()
            .map(|status| ChaincodeInfo {
                chaincode: status.chaincode.to_string(),
                phase: status.phase.to_string(),
                executor: status.executor.to_owned(),
                generation: status.generation.0,
                uptime_ms: status
                    .uptime
                    .map(|up| u64::try_from(up.as_millis()).unwrap_or(u64::MAX)),
                last_error: bounded(status.last_error.unwrap_or_default(), MAX_ERROR_BYTES),
            })
            .collect();
        Ok(Response::new(page(
            all,
            request.page_size,
            &request.page_token,
            PAGE_BYTES,
        )))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let events =
            BroadcastStream::new(self.support.subscribe()).filter_map(|event| async move {
                // A watcher that falls behind skips what it missed.
                event.ok().as_ref().and_then(watch_event).map(Ok)
            });
        let shutdown = self.shutdown.clone().cancelled_owned();
        Ok(Response::new(Box::pin(events.take_until(shutdown))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, error_len: usize) -> ChaincodeInfo {
        ChaincodeInfo {
            chaincode: name.to_owned(),
            phase: "idle".to_owned(),
            last_error: "e".repeat(error_len),
            ..Default::default()
        }
    }

    fn all_pages(all: &[ChaincodeInfo], size: u32, budget: usize) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let reply = page(all.to_vec(), size, &token, budget);
            pages.push(
                reply
                    .chaincodes
                    .iter()
                    .map(|c| c.chaincode.clone())
                    .collect(),
            );
            if reply.next_page_token.is_empty() {
                return pages;
            }
            token = reply.next_page_token;
        }
    }

    #[test]
    fn pages_cover_everything_once_in_name_order() {
        let all: Vec<_> = (0..1234)
            .rev()
            .map(|i| info(&format!("cc{i:05}:1"), 10))
            .collect();
        let pages = all_pages(&all, 100, PAGE_BYTES);
        assert_eq!(pages.len(), 13);
        assert!(pages[..12].iter().all(|p| p.len() == 100));
        let flat: Vec<String> = pages.concat();
        let mut expected: Vec<String> = all.iter().map(|c| c.chaincode.clone()).collect();
        expected.sort();
        assert_eq!(flat, expected);
    }

    #[test]
    fn a_page_stays_under_its_byte_budget_but_never_stalls() {
        use prost::Message;
        let all: Vec<_> = (0..50)
            .map(|i| info(&format!("cc{i:02}:1"), 1000))
            .collect();
        let mut token = String::new();
        let mut seen = 0;
        loop {
            let reply = page(all.clone(), 0, &token, 4_000);
            assert!(reply.encoded_len() <= 4_100, "{}", reply.encoded_len());
            assert!(!reply.chaincodes.is_empty());
            seen += reply.chaincodes.len();
            if reply.next_page_token.is_empty() {
                break;
            }
            token = reply.next_page_token;
        }
        assert_eq!(seen, 50);
        // One entry bigger than the budget still comes, alone.
        let reply = page(
            vec![info("big:1", 10_000), info("small:1", 1)],
            0,
            "",
            4_000,
        );
        assert_eq!(reply.chaincodes.len(), 1);
        assert_eq!(reply.next_page_token, "big:1");
        // The page size is capped.
        let many: Vec<_> = (0..6000).map(|i| info(&format!("c{i:05}:1"), 0)).collect();
        assert_eq!(
            page(many, u32::MAX, "", usize::MAX).chaincodes.len(),
            MAX_PAGE_SIZE as usize
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_char_boundary() {
        let cut = bounded("é".repeat(10), 5);
        assert_eq!(cut, "éé [...]");
        assert_eq!(bounded("short".to_owned(), 5), "short");
    }
}
