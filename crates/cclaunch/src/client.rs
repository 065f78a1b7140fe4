//! The commands that talk to a running peer through its admin API:
//! `launch`, `invoke`, `stop`, `ps`, `watch`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tonic::transport::Channel;

use crate::admin::AdminClient;
use crate::admin::client::{Resolved, cli_error, connect, deadline_error, with_deadline};
use crate::admin::proto::{
    ChaincodeInfo, InvokeRequest, LaunchRequest, PsRequest, StopRequest, WatchRequest,
};
use crate::error::CliError;
use crate::output::{Output, Spinner, outln};

/// How long `launch` and `invoke` wait by default: longer than the peer's
/// default startup timeout (300 s), so that the peer's own error arrives first.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(330);
/// How long `stop` waits by default (the peer's stop grace and more).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `ps` (all pages) and the start of `watch` wait by default.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a command reaches the peer: where, and how long it waits for an answer.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin API's address and how it was chosen.
    pub resolved: Resolved,
    /// The deadline of the command's call(s).
    pub timeout: Duration,
}

impl Admin {
    async fn connect(&self) -> Result<AdminClient<Channel>, CliError> {
        connect(&self.resolved).await
    }
}

fn check_name(chaincode: &str) -> Result<(), CliError> {
    chaincode
        .parse::<chaincode_proto::ChaincodeName>()
        .map(drop)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// `cclaunch launch CCID`.
pub async fn launch(admin: &Admin, chaincode: &str, out: Output) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = admin.connect().await?;
    let spinner = Spinner::start(format!("launching {chaincode}"), out.json);
    let reply = with_deadline(
        &admin.resolved,
        &format!("launch of {chaincode}"),
        admin.timeout,
        client.launch(LaunchRequest {
            chaincode: chaincode.to_owned(),
        }),
    )
    .await?
    .map_err(|status| cli_error(&status, chaincode))?;
    drop(spinner);
    if out.json {
        out.json_line(&json!({
            "chaincode": reply.chaincode,
            "phase": "ready",
            "generation": reply.generation,
            "took_ms": reply.took_ms,
        }))?;
    } else {
        outln!(
            "{} ready (generation {}, launched in {} ms)",
            reply.chaincode,
            reply.generation,
            reply.took_ms
        )?;
    }
    Ok(())
}

/// The arguments of `cclaunch invoke`: the positional `args`, or `ctor`
/// (`-c JSON`) read as Fabric's peer CLI reads it: an object whose `Args`
/// is a list of strings and whose optional `function`, when not empty,
/// becomes the first argument (keys match case-insensitively, as Go's
/// `encoding/json` does). Both at once, bad JSON, a non-string argument or
/// an unknown key is a usage error that says what was wrong.
pub fn invoke_args(
    chaincode: &str,
    args: Vec<String>,
    ctor: Option<&str>,
) -> Result<Vec<String>, CliError> {
    let Some(ctor) = ctor else {
        return Ok(args);
    };
    let usage = |what: String| {
        CliError::usage(format!("invoke of {chaincode}: {what}")).with_hint(
            "write -c '{\"Args\":[\"put\",\"a\",\"1\"]}' or -c '{\"function\":\"put\",\"Args\":[\"a\",\"1\"]}', or the arguments after the chaincode, not both",
        )
    };
    if !args.is_empty() {
        return Err(usage(format!(
            "both -c and positional arguments ({}) were given; the arguments come from one or the other",
            args.join(" ")
        )));
    }
    let value: serde_json::Value =
        serde_json::from_str(ctor).map_err(|e| usage(format!("-c is not valid JSON: {e}")))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(usage(format!(
            "-c must be a JSON object with \"Args\", not {}",
            json_kind(&value)
        )));
    };
    let mut function = String::new();
    let mut rest = Vec::new();
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("function") {
            function = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => String::new(),
                other => {
                    return Err(usage(format!(
                        "-c \"{key}\" must be a string, not {}",
                        json_kind(&other)
                    )));
                }
            };
        } else if key.eq_ignore_ascii_case("args") {
            rest = match value {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| match item {
                        serde_json::Value::String(text) => Ok(text),
                        other => Err(usage(format!(
                            "-c \"{key}\"[{index}] must be a string, not {} (quote it: \"{other}\")",
                            json_kind(&other)
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::Null => Vec::new(),
                other => {
                    return Err(usage(format!(
                        "-c \"{key}\" must be a list of strings, not {}",
                        json_kind(&other)
                    )));
                }
            };
        } else {
            return Err(usage(format!(
                "-c has an unknown key \"{key}\" (only \"Args\" and \"function\")"
            )));
        }
    }
    if !function.is_empty() {
        rest.insert(0, function);
    }
    Ok(rest)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `cclaunch invoke CCID [--init] ARG...`: a status other than 200 fails.
pub async fn invoke(
    admin: &Admin,
    chaincode: &str,
    init: bool,
    args: Vec<String>,
    out: Output,
) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = admin.connect().await?;
    let reply = with_deadline(
        &admin.resolved,
        &format!("invoke of {chaincode}"),
        admin.timeout,
        client.invoke(InvokeRequest {
            chaincode: chaincode.to_owned(),
            init,
            args: args.into_iter().map(String::into_bytes).collect(),
        }),
    )
    .await?
    .map_err(|status| cli_error(&status, chaincode))?;
    let payload = String::from_utf8_lossy(&reply.payload);
    if out.json {
        out.json_line(&json!({
            "chaincode": chaincode,
            "status": reply.status,
            "message": reply.message,
            "payload": payload,
        }))?;
    } else {
        outln!("status: {}", reply.status)?;
        if !reply.message.is_empty() {
            outln!("message: {}", reply.message)?;
        }
        outln!("payload: {payload}")?;
    }
    if reply.status == 200 {
        Ok(())
    } else {
        // The reply itself was printed; the error line says why we exit 1.
        Err(CliError::new(format!(
            "{chaincode} answered with status {}{}",
            reply.status,
            if reply.message.is_empty() {
                String::new()
            } else {
                format!(": {}", reply.message)
            }
        )))
    }
}

/// `cclaunch stop CCID`.
pub async fn stop(admin: &Admin, chaincode: &str, out: Output) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = admin.connect().await?;
    with_deadline(
        &admin.resolved,
        &format!("stop of {chaincode}"),
        admin.timeout,
        client.stop(StopRequest {
            chaincode: chaincode.to_owned(),
        }),
    )
    .await?
    .map_err(|status| cli_error(&status, chaincode))?;
    if out.json {
        out.json_line(&json!({"chaincode": chaincode, "stopped": true}))?;
    } else {
        outln!("{chaincode} stopped")?;
    }
    Ok(())
}

fn uptime_text(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{}s", ms / 1_000),
        Some(ms) if ms < 3_600_000 => format!("{}m{}s", ms / 60_000, ms % 60_000 / 1_000),
        Some(ms) => format!("{}h{}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// Every entry of `ps`, page after page (`page_size` 0 = the server's
/// choice), all within `admin.timeout`.
pub async fn ps_all(
    client: &mut AdminClient<Channel>,
    admin: &Admin,
    page_size: u32,
) -> Result<Vec<ChaincodeInfo>, CliError> {
    let pages = async {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let reply = client
                .ps(PsRequest {
                    page_size,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|status| cli_error(&status, ""))?
                .into_inner();
            all.extend(reply.chaincodes);
            if reply.next_page_token.is_empty() {
                return Ok(all);
            }
            // Tokens move forward in name order; one that does not would loop.
            if reply.next_page_token <= page_token {
                return Err(CliError::new(format!(
                    "ps: the peer's admin API at {} returned a page token that does not advance",
                    admin.resolved
                )));
            }
            page_token = reply.next_page_token;
        }
    };
    tokio::time::timeout(admin.timeout, pages)
        .await
        .map_err(|_| deadline_error(&admin.resolved, "ps", admin.timeout))?
}

/// `cclaunch ps`.
pub async fn ps(admin: &Admin, out: Output) -> Result<(), CliError> {
    let mut client = admin.connect().await?;
    let chaincodes = ps_all(&mut client, admin, 0).await?;
    if out.json {
        let all: Vec<_> = chaincodes
            .iter()
            .map(|cc| {
                json!({
                    "chaincode": cc.chaincode,
                    "phase": cc.phase,
                    "executor": cc.executor,
                    "generation": cc.generation,
                    "uptime_ms": cc.uptime_ms,
                    "last_error": (!cc.last_error.is_empty()).then_some(&cc.last_error),
                })
            })
            .collect();
        return out.json_line(&serde_json::Value::Array(all));
    }
    if chaincodes.is_empty() {
        return outln!(
            "no chaincode known to the peer yet (launch one with `cclaunch launch NAME:VERSION`)"
        );
    }
    outln!(
        "{:<24} {:<18} {:<8} {:>4} {:>8}  LAST ERROR",
        "CHAINCODE",
        "PHASE",
        "EXECUTOR",
        "GEN",
        "UPTIME"
    )?;
    for cc in &chaincodes {
        outln!(
            "{:<24} {:<18} {:<8} {:>4} {:>8}  {}",
            cc.chaincode,
            cc.phase,
            cc.executor,
            cc.generation,
            uptime_text(cc.uptime_ms),
            if cc.last_error.is_empty() {
                "-"
            } else {
                &cc.last_error
            }
        )?;
    }
    Ok(())
}

/// `cclaunch watch [--for SECS]`: prints phase changes until the peer stops,
/// Ctrl-C, or `limit` passes.
pub async fn watch(admin: &Admin, limit: Option<Duration>, out: Output) -> Result<(), CliError> {
    let mut client = admin.connect().await?;
    // The deadline covers opening the stream, not the events that follow.
    let mut events = with_deadline(
        &admin.resolved,
        "watch",
        admin.timeout,
        client.watch(WatchRequest {}),
    )
    .await?
    .map_err(|status| cli_error(&status, ""))?;
    let started = std::time::Instant::now();
    if !out.json {
        eprintln!(
            "watching phase changes on {} (Ctrl-C to stop)",
            admin.resolved.target
        );
    }
    let deadline = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            () = &mut deadline => return Ok(()),
            event = events.next() => event,
        };
        let event = match event {
            None => return Ok(()),
            Some(Ok(event)) => event,
            Some(Err(status)) => {
                return Err(CliError::new(format!(
                    "the watch stream from {} failed: {}",
                    admin.resolved.target,
                    status.message()
                )));
            }
        };
        let elapsed = started.elapsed().as_millis();
        if out.json {
            out.json_line(&json!({
                "elapsed_ms": elapsed,
                "unix_ms": event.unix_ms,
                "chaincode": event.chaincode,
                "phase": (!event.phase.is_empty()).then_some(&event.phase),
                "generation": event.generation,
                "progress": (!event.progress.is_empty()).then_some(&event.progress),
            }))?;
        } else if event.progress.is_empty() {
            outln!(
                "{elapsed:>7} ms  {:<24} {} (generation {})",
                event.chaincode,
                event.phase,
                event.generation
            )?;
        } else {
            outln!(
                "{elapsed:>7} ms  {:<24} {}",
                event.chaincode,
                event.progress
            )?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctor(json: &str) -> Result<Vec<String>, CliError> {
        invoke_args("kv:1.0", Vec::new(), Some(json))
    }

    #[test]
    fn ctor_json_reads_as_fabric_s_peer_cli() {
        let want = vec!["put".to_owned(), "a".to_owned(), "1".to_owned()];
        assert_eq!(ctor(r#"{"Args":["put","a","1"]}"#).unwrap(), want);
        assert_eq!(
            ctor(r#"{"function":"put","Args":["a","1"]}"#).unwrap(),
            want
        );
        // Go's encoding/json matches keys case-insensitively.
        assert_eq!(
            ctor(r#"{"Function":"put","args":["a","1"]}"#).unwrap(),
            want
        );
        // An empty function is not an argument.
        assert_eq!(ctor(r#"{"function":"","Args":["get"]}"#).unwrap(), ["get"]);
        assert_eq!(ctor(r#"{"Args":[]}"#).unwrap(), Vec::<String>::new());
        let positional = invoke_args("kv:1.0", want.clone(), None).unwrap();
        assert_eq!(positional, want);
    }

    #[test]
    fn bad_ctor_json_is_a_usage_error_saying_what_is_wrong() {
        for (json, what) in [
            (r#"{"Args":["put","a""#, "not valid JSON"),
            (r#"["put","a"]"#, "not a list"),
            (
                r#"{"Args":["put","a",1]}"#,
                "\"Args\"[2] must be a string, not a number",
            ),
            (
                r#"{"Args":"put"}"#,
                "must be a list of strings, not a string",
            ),
            (
                r#"{"function":7,"Args":[]}"#,
                "\"function\" must be a string",
            ),
            (r#"{"Arg":["put"]}"#, "unknown key \"Arg\""),
        ] {
            let err = ctor(json).unwrap_err();
            assert_eq!(err.code, 2, "{json}");
            assert!(
                err.message.starts_with("invoke of kv:1.0: ") && err.message.contains(what),
                "{json}: {}",
                err.message
            );
        }
        let err =
            invoke_args("kv:1.0", vec!["get".to_owned()], Some(r#"{"Args":[]}"#)).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(
            err.message
                .contains("both -c and positional arguments (get)"),
            "{}",
            err.message
        );
    }
}
