//! Arbitrary bytes as a `ChaincodeMessage`: decoding and every payload
//! decoder must return a value or an error, never panic; whatever decodes
//! must survive an encode/decode round trip unchanged.
#![no_main]

use chaincode_proto::{
    ChaincodeDeploymentSpec, ChaincodeId, ChaincodeInput, ChaincodeMessage, DelState, GetState,
    PutState, Response,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    // The raw bytes as each payload type the peer or the shim decodes.
    let _ = ChaincodeDeploymentSpec::decode(data);
    let _ = ChaincodeInput::decode(data);

    let Ok(msg) = ChaincodeMessage::decode_bytes(data) else {
        return;
    };
    let _ = msg.type_label();
    let _ = msg.message_type();
    let _ = msg.payload_text();
    let _ = msg.registered_name();
    let _ = msg.decode_payload::<ChaincodeId>();
    let _ = msg.decode_payload::<ChaincodeInput>();
    let _ = msg.decode_payload::<Response>();
    let _ = msg.decode_payload::<GetState>();
    let _ = msg.decode_payload::<PutState>();
    let _ = msg.decode_payload::<DelState>();

    let again = ChaincodeMessage::decode_bytes(&msg.encode_to_vec())
        .expect("a decoded message re-encodes to decodable bytes");
    assert_eq!(again, msg, "round trip changed the message");
});
