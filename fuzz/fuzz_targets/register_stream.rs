//! Arbitrary message sequences on a `Register` stream of a real runtime (no
//! launch waiting, net mode): every stream must be refused or closed cleanly,
//! nothing panics, and no registry entry is left behind. Each message is also
//! run through the plain routing functions the stream uses after REGISTER.
#![no_main]

use std::sync::OnceLock;

use chaincode_proto::{ChaincodeMessage, ChaincodeName};
use chaincode_support::stream::{Inbound, answer_state, classify, validate_first};
use chaincode_support::{ChaincodeSupport, MemoryStateStore, SupportConfig};
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use prost::Message;

struct World {
    runtime: tokio::runtime::Runtime,
    support: ChaincodeSupport,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let support = runtime.block_on(async { ChaincodeSupport::builder(SupportConfig::default()).build() });
        World { runtime, support }
    })
}

/// Splits the input into messages: each chunk is a length byte and that many
/// bytes, decoded as a ChaincodeMessage when it can be.
fn messages(mut data: &[u8]) -> Vec<ChaincodeMessage> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        if let Ok(message) = ChaincodeMessage::decode(chunk) {
            out.push(message);
        }
        data = rest;
        if out.len() >= 32 {
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let messages = messages(data);
    let state = MemoryStateStore::new();
    let chaincode: ChaincodeName = "fuzz:1.0".parse().expect("a valid name");
    for message in &messages {
        let _ = validate_first(message);
        if let Inbound::State { txid, op } = classify(message) {
            let answer = answer_state(&state, &chaincode, &txid, op);
            assert_eq!(answer.txid, txid);
        }
    }

    let World { runtime, support } = world();
    runtime.block_on(async {
        let inbound = futures::stream::iter(messages.into_iter().map(Ok));
        let mut replies = support.connect(inbound);
        // Without a launch waiting, the runtime answers at most one ERROR
        // and closes the stream.
        let mut count = 0;
        while let Some(reply) = replies.next().await {
            let reply = reply.expect("the runtime never sends a gRPC error");
            assert_eq!(reply.type_label(), "ERROR");
            count += 1;
        }
        assert!(count <= 1, "{count} replies");
    });
    assert_eq!(support.known_chaincodes(), 0, "a refused stream left an entry");
});
