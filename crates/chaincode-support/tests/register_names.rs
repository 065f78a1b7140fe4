//! A REGISTER whose name breaks Fabric's rules is refused over real gRPC on
//! 127.0.0.1, quoting the rule, and leaves nothing behind — even in dev mode,
//! where a valid unsolicited REGISTER creates an entry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::name::{LABEL_RULE, NAME_RULE, VERSION_RULE};
use chaincode_proto::prost::Message;
use chaincode_proto::{ChaincodeId, ChaincodeMessage};
use chaincode_support::Mode;
use common::*;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const LIMIT: Duration = Duration::from_secs(20);

/// A REGISTER for `text`, built by hand: `ChaincodeMessage::register` takes
/// a `ChaincodeName`, which cannot hold a bad name.
fn register_raw(text: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Register as i32,
        payload: ChaincodeId {
            name: text.to_owned(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn invalid_names_in_register_are_refused_quoting_the_rule() {
    let support = peer_with(
        Arc::new(executor::dev::DevExecutor),
        |c| c.mode = Mode::Dev,
        |b| b,
    )
    .await;
    let config =
        chaincode_shim::Config::new(name("any:1"), support.config().peer_address.clone()).unwrap();
    let long = format!("{}:1", "a".repeat(300));
    let package_id = format!(".hidden:{}", "0".repeat(64));
    for (text, rule) in [
        ("../x:1", NAME_RULE),
        ("/tmp/evil:1", NAME_RULE),
        ("kv:1/../../etc", VERSION_RULE),
        ("my cc:1", NAME_RULE),
        ("café:1", NAME_RULE),
        (package_id.as_str(), LABEL_RULE),
        (long.as_str(), "at most 255"),
    ] {
        let mut client = chaincode_shim::connect(&config).await.unwrap();
        let (tx, rx) = mpsc::channel(1);
        tx.send(register_raw(text)).await.unwrap();
        let mut replies = client
            .register(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let reply = tokio::time::timeout(LIMIT, replies.next())
            .await
            .expect("a reply in time")
            .and_then(Result::ok)
            .expect("an ERROR reply");
        assert_eq!(reply.message_type(), Type::Error, "{text}");
        let why = reply.payload_text();
        assert!(why.contains("invalid chaincode name"), "{text}: {why}");
        assert!(why.contains(rule), "{text}: {why}");
        let closed = tokio::time::timeout(LIMIT, replies.next())
            .await
            .expect("the stream ends in time");
        assert!(
            closed.is_none_or(|r| r.is_err()),
            "{text}: the stream is closed"
        );
    }
    assert_eq!(support.known_chaincodes(), 0, "no entry for a refused name");
    support.shutdown(Duration::from_secs(5)).await;
}
