//! `faulty`: a chaincode that misbehaves on purpose (modes in the crate docs).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::{ChaincodeMessage, chaincode_message::Type};
use chaincode_samples::{Faulty, FaultyMode, exit_code};
use chaincode_shim::Config;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// How long `never-register` keeps the stream open before giving up.
const NEVER_REGISTER_FOR: Duration = Duration::from_secs(600);
/// Bound on each handshake step of `crash-after-ready`.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let mode = match FaultyMode::from_parts(env, std::env::args().skip(1)) {
        Ok(mode) => mode,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(exit_code::CONFIG_ERROR);
        }
    };
    eprintln!("faulty: mode {mode}");
    chaincode_samples::init_logging();
    match mode {
        FaultyMode::CrashBeforeRegister => {
            eprintln!("faulty: crashing before register");
            ExitCode::from(exit_code::CRASH_BEFORE_REGISTER)
        }
        FaultyMode::CrashAfterReady | FaultyMode::NeverRegister => raw(mode),
        _ => {
            let delay = match Faulty::delay_from_env(env) {
                Ok(delay) => delay,
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::from(exit_code::CONFIG_ERROR);
                }
            };
            chaincode_samples::run_chaincode("faulty", Arc::new(Faulty::new(mode, delay)))
        }
    }
}

/// The modes that break the protocol itself, so they speak it by hand.
fn raw(mode: FaultyMode) -> ExitCode {
    let config = match Config::from_env_and_args() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("faulty: {error}");
            return ExitCode::from(exit_code::CONFIG_ERROR);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faulty: cannot start the tokio runtime: {error}");
            return ExitCode::from(exit_code::SHIM_ERROR);
        }
    };
    match runtime.block_on(misbehave(mode, config)) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("faulty: {message}");
            ExitCode::from(exit_code::SHIM_ERROR)
        }
    }
}

async fn misbehave(mode: FaultyMode, config: Config) -> Result<u8, String> {
    let mut client = chaincode_shim::connect(&config)
        .await
        .map_err(|e| e.to_string())?;
    let (outbound, requests) = mpsc::channel::<ChaincodeMessage>(8);
    if mode == FaultyMode::NeverRegister {
        eprintln!(
            "faulty: connected to {}, never sending REGISTER",
            config.peer_address
        );
        // Keep the stream open (the call may only resolve once the peer
        // answers) without ever sending; killing the process ends this.
        let call = client.register(ReceiverStream::new(requests));
        let _ = tokio::time::timeout(NEVER_REGISTER_FOR, async {
            let _answers = call.await;
            std::future::pending::<()>().await
        })
        .await;
        drop(outbound);
        eprintln!("faulty: nobody killed me in {NEVER_REGISTER_FOR:?}, giving up");
        return Ok(exit_code::NEVER_REGISTER_GAVE_UP);
    }
    eprintln!("faulty: sending REGISTER as {}", config.name);
    outbound
        .send(ChaincodeMessage::register(&config.name))
        .await
        .map_err(|_| "register: request stream closed".to_owned())?;
    let mut answers = client
        .register(ReceiverStream::new(requests))
        .await
        .map_err(|status| format!("register: {status}"))?
        .into_inner();
    for expected in [Type::Registered, Type::Ready] {
        let msg = tokio::time::timeout(STEP_TIMEOUT, answers.next())
            .await
            .map_err(|_| format!("handshake: no {expected} within {STEP_TIMEOUT:?}"))?
            .ok_or_else(|| format!("handshake: peer closed the stream before {expected}"))?
            .map_err(|status| format!("handshake: {status}"))?;
        if msg.known_type() != Some(expected) {
            return Err(format!(
                "handshake: expected {expected}, got {}",
                msg.type_label()
            ));
        }
        eprintln!("faulty: got {expected}");
    }
    eprintln!("faulty: crashing right after READY");
    Ok(exit_code::CRASH_AFTER_READY)
}
