//! The commands that talk to a running peer through its admin API:
//! `launch`, `invoke`, `stop`, `ps`, `watch`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::admin::proto::{InvokeRequest, LaunchRequest, PsRequest, StopRequest, WatchRequest};
use crate::admin::{cli_error, connect};
use crate::error::CliError;
use crate::output::{Output, Spinner};

fn check_name(chaincode: &str) -> Result<(), CliError> {
    chaincode
        .parse::<chaincode_proto::ChaincodeName>()
        .map(drop)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// `cclaunch launch CCID`.
pub async fn launch(admin: &str, chaincode: &str, out: Output) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = connect(admin).await?;
    let spinner = Spinner::start(format!("launching {chaincode}"), out.json);
    let reply = client
        .launch(LaunchRequest {
            chaincode: chaincode.to_owned(),
        })
        .await
        .map_err(|status| cli_error(&status, chaincode))?
        .into_inner();
    drop(spinner);
    if out.json {
        out.json_line(&json!({
            "chaincode": reply.chaincode,
            "phase": "ready",
            "generation": reply.generation,
            "took_ms": reply.took_ms,
        }));
    } else {
        println!(
            "{} ready (generation {}, launched in {} ms)",
            reply.chaincode, reply.generation, reply.took_ms
        );
    }
    Ok(())
}

/// `cclaunch invoke CCID [--init] ARG...`: a status other than 200 fails.
pub async fn invoke(
    admin: &str,
    chaincode: &str,
    init: bool,
    args: Vec<String>,
    out: Output,
) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = connect(admin).await?;
    let reply = client
        .invoke(InvokeRequest {
            chaincode: chaincode.to_owned(),
            init,
            args: args.into_iter().map(String::into_bytes).collect(),
        })
        .await
        .map_err(|status| cli_error(&status, chaincode))?
        .into_inner();
    let payload = String::from_utf8_lossy(&reply.payload);
    if out.json {
        out.json_line(&json!({
            "chaincode": chaincode,
            "status": reply.status,
            "message": reply.message,
            "payload": payload,
        }));
    } else {
        println!("status: {}", reply.status);
        if !reply.message.is_empty() {
            println!("message: {}", reply.message);
        }
        println!("payload: {payload}");
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
pub async fn stop(admin: &str, chaincode: &str, out: Output) -> Result<(), CliError> {
    check_name(chaincode)?;
    let mut client = connect(admin).await?;
    client
        .stop(StopRequest {
            chaincode: chaincode.to_owned(),
        })
        .await
        .map_err(|status| cli_error(&status, chaincode))?;
    if out.json {
        out.json_line(&json!({"chaincode": chaincode, "stopped": true}));
    } else {
        println!("{chaincode} stopped");
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

/// `cclaunch ps`.
pub async fn ps(admin: &str, out: Output) -> Result<(), CliError> {
    let mut client = connect(admin).await?;
    let reply = client
        .ps(PsRequest {})
        .await
        .map_err(|status| cli_error(&status, ""))?
        .into_inner();
    if out.json {
        let all: Vec<_> = reply
            .chaincodes
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
        out.json_line(&serde_json::Value::Array(all));
        return Ok(());
    }
    if reply.chaincodes.is_empty() {
        println!(
            "no chaincode known to the peer yet (launch one with `cclaunch launch NAME:VERSION`)"
        );
        return Ok(());
    }
    println!(
        "{:<24} {:<18} {:<8} {:>4} {:>8}  LAST ERROR",
        "CHAINCODE", "PHASE", "EXECUTOR", "GEN", "UPTIME"
    );
    for cc in &reply.chaincodes {
        println!(
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
        );
    }
    Ok(())
}

/// `cclaunch watch [--for SECS]`: prints phase changes until the peer stops,
/// Ctrl-C, or `limit` passes.
pub async fn watch(admin: &str, limit: Option<Duration>, out: Output) -> Result<(), CliError> {
    let mut client = connect(admin).await?;
    let mut events = client
        .watch(WatchRequest {})
        .await
        .map_err(|status| cli_error(&status, ""))?
        .into_inner();
    let started = std::time::Instant::now();
    if !out.json {
        eprintln!("watching phase changes on {admin} (Ctrl-C to stop)");
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
                    "the watch stream from {admin} failed: {}",
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
            }));
        } else if event.progress.is_empty() {
            println!(
                "{elapsed:>7} ms  {:<24} {} (generation {})",
                event.chaincode, event.phase, event.generation
            );
        } else {
            println!(
                "{elapsed:>7} ms  {:<24} {}",
                event.chaincode, event.progress
            );
        }
    }
}
