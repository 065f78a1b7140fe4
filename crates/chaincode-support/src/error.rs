//! What the runtime's callers can get back.

use std::time::Duration;

use launch_fsm::LaunchError;

/// Why a launch, execute or stop did not succeed. Every message names the
/// chaincode and, where there is one, the phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupportError {
    /// The launch failed; `last_output` is what the runtime printed last.
    #[error("launch of {chaincode} failed: {source}{}", output_suffix(.last_output))]
    Launch {
        /// `name:version`.
        chaincode: String,
        /// What went wrong, and in which phase.
        #[source]
        source: LaunchError,
        /// The runtime's last lines of output, oldest first.
        last_output: Vec<String>,
    },
    /// The transaction did not complete within the execute timeout.
    #[error("execute on {chaincode}: transaction {txid} timed out after {timeout:?}")]
    ExecuteTimeout {
        /// `name:version`.
        chaincode: String,
        /// The transaction id.
        txid: String,
        /// The execute timeout.
        timeout: Duration,
    },
    /// The chaincode answered the transaction with ERROR.
    #[error("execute on {chaincode}: chaincode returned error for {txid}: {message}")]
    ChaincodeError {
        /// `name:version`.
        chaincode: String,
        /// The transaction id.
        txid: String,
        /// The ERROR payload.
        message: String,
    },
    /// The chaincode's stream or runtime went away during the transaction.
    #[error("execute on {chaincode}: chaincode went away during {txid}: {reason}")]
    StreamLost {
        /// `name:version`.
        chaincode: String,
        /// The transaction id.
        txid: String,
        /// What happened.
        reason: String,
    },
    /// The chaincode answered with something that is not a valid reply.
    #[error("execute on {chaincode}: bad reply to {txid}: {reason}")]
    BadReply {
        /// `name:version`.
        chaincode: String,
        /// The transaction id.
        txid: String,
        /// What was wrong.
        reason: String,
    },
    /// The runtime already knows as many chaincodes as it may
    /// ([`crate::SupportConfig::max_chaincodes`]); nothing was created.
    #[error("launch of {chaincode} refused: the peer already knows {limit} chaincodes")]
    TooManyChaincodes {
        /// `name:version`.
        chaincode: String,
        /// The limit in force.
        limit: usize,
    },
    /// The runtime is shutting down and takes no new work.
    #[error("{chaincode}: the peer is shutting down")]
    ShuttingDown {
        /// `name:version`.
        chaincode: String,
    },
}

fn output_suffix(lines: &[String]) -> String {
    match lines.last() {
        Some(last) => format!("; last output: {last}"),
        None => String::new(),
    }
}
