//! Wire compatibility: the golden vector, round-trips, and garbage input.

use chaincode_proto::prost::Message;
use chaincode_proto::prost_types::Timestamp;
use chaincode_proto::{
    ChaincodeDeploymentSpec, ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeMessage, ChaincodeName, ChaincodeSpec, DelState, GetState, Payload, ProtoError,
    PutState, Response, SignedProposal, chaincode_deployment_spec::ExecutionEnvironment,
    chaincode_message::Type, chaincode_spec,
};
use proptest::prelude::*;

#[test]
fn golden_register_vector_matches_fabric_byte_for_byte() {
    let name = ChaincodeName::parse("mycc:1.0").unwrap();
    let bytes = ChaincodeMessage::register(&name).encode_to_vec();
    assert_eq!(hex::encode(&bytes), "08011a0a12086d7963633a312e30");

    // And the other way: Fabric's bytes decode to REGISTER for mycc:1.0.
    let decoded =
        ChaincodeMessage::decode_bytes(&hex::decode("08011a0a12086d7963633a312e30").unwrap())
            .unwrap();
    assert_eq!(decoded.message_type(), Type::Register);
    assert_eq!(decoded.registered_name().unwrap(), name);
}

#[test]
fn enum_numbers_match_fabric() {
    let expected = [
        (Type::Undefined, 0, "UNDEFINED"),
        (Type::Register, 1, "REGISTER"),
        (Type::Registered, 2, "REGISTERED"),
        (Type::Init, 3, "INIT"),
        (Type::Ready, 4, "READY"),
        (Type::Transaction, 5, "TRANSACTION"),
        (Type::Completed, 6, "COMPLETED"),
        (Type::Error, 7, "ERROR"),
        (Type::GetState, 8, "GET_STATE"),
        (Type::PutState, 9, "PUT_STATE"),
        (Type::DelState, 10, "DEL_STATE"),
        (Type::InvokeChaincode, 11, "INVOKE_CHAINCODE"),
        (Type::Response, 13, "RESPONSE"),
        (Type::GetStateByRange, 14, "GET_STATE_BY_RANGE"),
        (Type::GetQueryResult, 15, "GET_QUERY_RESULT"),
        (Type::QueryStateNext, 16, "QUERY_STATE_NEXT"),
        (Type::QueryStateClose, 17, "QUERY_STATE_CLOSE"),
        (Type::Keepalive, 18, "KEEPALIVE"),
        (Type::GetHistoryForKey, 19, "GET_HISTORY_FOR_KEY"),
        (Type::GetStateMetadata, 20, "GET_STATE_METADATA"),
        (Type::PutStateMetadata, 21, "PUT_STATE_METADATA"),
        (Type::GetPrivateDataHash, 22, "GET_PRIVATE_DATA_HASH"),
        (Type::PurgePrivateData, 23, "PURGE_PRIVATE_DATA"),
        (Type::WriteBatchState, 24, "WRITE_BATCH_STATE"),
        (Type::GetStateMultiple, 25, "GET_STATE_MULTIPLE"),
    ];
    for (kind, number, name) in expected {
        assert_eq!(kind as i32, number, "{name}");
        assert_eq!(kind.as_str_name(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(Type::from_str_name(name), Some(kind));
    }
    assert!(Type::try_from(12).is_err(), "12 is unused in Fabric");
    assert_eq!(chaincode_spec::Type::Golang as i32, 1);
    assert_eq!(chaincode_spec::Type::Node as i32, 2);
    assert_eq!(chaincode_spec::Type::Car as i32, 3);
    assert_eq!(chaincode_spec::Type::Java as i32, 4);
    assert_eq!(ExecutionEnvironment::Docker as i32, 0);
    assert_eq!(ExecutionEnvironment::System as i32, 1);
}

/// Field numbers checked on the wire: each field's tag byte is
/// `(number << 3) | wire_type`.
#[test]
fn field_numbers_match_fabric() {
    let msg = ChaincodeMessage {
        r#type: Type::Transaction as i32,
        timestamp: Some(Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        payload: vec![0xAA],
        txid: "t".into(),
        proposal: Some(SignedProposal {
            proposal_bytes: vec![1],
            signature: vec![2],
        }),
        chaincode_event: Some(ChaincodeEvent {
            chaincode_id: "c".into(),
            ..Default::default()
        }),
        channel_id: "ch".into(),
    };
    let bytes = msg.encode_to_vec();
    let expected = hex::decode(concat!(
        "0805",             // type = 5 (field 1 varint)
        "12020801",         // timestamp {seconds: 1} (field 2)
        "1a01aa",           // payload (field 3)
        "220174",           // txid "t" (field 4)
        "2a060a0101120102", // proposal {1: [1], 2: [2]} (field 5)
        "32030a0163",       // chaincode_event {chaincode_id: "c"} (field 6)
        "3a026368",         // channel_id "ch" (field 7)
    ))
    .unwrap();
    assert_eq!(bytes, expected);

    let put = PutState {
        key: "k".into(),
        value: vec![0x76],
        collection: "c".into(),
    };
    assert_eq!(hex::encode(put.encode_to_vec()), "0a016b1201761a0163");
    let get = GetState {
        key: "k".into(),
        collection: "c".into(),
    };
    assert_eq!(hex::encode(get.encode_to_vec()), "0a016b120163");
    let response = Response {
        status: 200,
        message: "m".into(),
        payload: vec![1],
    };
    assert_eq!(hex::encode(response.encode_to_vec()), "08c80112016d1a0101");
    let input = ChaincodeInput {
        args: vec![b"a".to_vec()],
        decorations: [("d".to_owned(), vec![2])].into_iter().collect(),
        is_init: true,
    };
    assert_eq!(
        hex::encode(input.encode_to_vec()),
        // args[0] "a" (1), decorations {"d": [2]} (2), is_init (3)
        "0a016112060a01641201021801"
    );
    let id = ChaincodeId {
        path: "p".into(),
        name: "n".into(),
        version: "v".into(),
    };
    assert_eq!(hex::encode(id.encode_to_vec()), "0a017012016e1a0176");
}

fn round_trip<P: Payload + PartialEq + std::fmt::Debug>(value: P) {
    let bytes = value.encode_to_vec();
    let back = P::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, value, "{} round-trip", P::PROTO_NAME);
}

#[test]
fn every_message_round_trips() {
    let id = ChaincodeId {
        path: "github.com/x".into(),
        name: "mycc:1.0".into(),
        version: "1.0".into(),
    };
    let input = ChaincodeInput {
        args: vec![b"put".to_vec(), b"k".to_vec(), vec![0, 255]],
        decorations: [("a".to_owned(), b"b".to_vec())].into_iter().collect(),
        is_init: true,
    };
    let spec = ChaincodeSpec {
        r#type: chaincode_spec::Type::Golang as i32,
        chaincode_id: Some(id.clone()),
        input: Some(input.clone()),
        timeout: 30,
    };
    round_trip(id.clone());
    round_trip(input.clone());
    round_trip(spec.clone());
    round_trip(ChaincodeDeploymentSpec {
        chaincode_spec: Some(spec.clone()),
        effective_date: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        code_package: vec![1, 2, 3],
        exec_env: ExecutionEnvironment::System as i32,
    });
    round_trip(ChaincodeInvocationSpec {
        chaincode_spec: Some(spec),
        id_generation_alg: "sha256".into(),
    });
    round_trip(ChaincodeEvent {
        chaincode_id: "mycc".into(),
        tx_id: "tx1".into(),
        event_name: "ev".into(),
        payload: b"p".to_vec(),
    });
    round_trip(SignedProposal {
        proposal_bytes: b"prop".to_vec(),
        signature: b"sig".to_vec(),
    });
    round_trip(Response::ok(b"v".to_vec()));
    round_trip(Response::error(404, "not found"));
    round_trip(GetState {
        key: "k".into(),
        collection: "c".into(),
    });
    round_trip(PutState {
        key: "k".into(),
        value: b"v".to_vec(),
        collection: String::new(),
    });
    round_trip(DelState {
        key: "k".into(),
        collection: String::new(),
    });

    let name = ChaincodeName::parse("mycc:1.0").unwrap();
    let messages = [
        ChaincodeMessage::register(&name),
        ChaincodeMessage::registered(),
        ChaincodeMessage::ready(),
        ChaincodeMessage::keepalive(),
        ChaincodeMessage::init("tx0", &input).with_channel("ch"),
        ChaincodeMessage::transaction("tx1", &input),
        ChaincodeMessage::completed("tx1", &Response::ok(b"x".to_vec())),
        ChaincodeMessage::error("tx1", "boom"),
        ChaincodeMessage::response("tx1", b"value".to_vec()),
        ChaincodeMessage::get_state("tx1", "k"),
        ChaincodeMessage::put_state("tx1", "k", b"v".to_vec()),
        ChaincodeMessage::del_state("tx1", "k"),
    ];
    for msg in messages {
        round_trip(msg);
    }
}

#[test]
fn constructors_carry_typed_payloads() {
    let input = ChaincodeInput::from_args(["get", "k"]);
    let tx = ChaincodeMessage::transaction("tx9", &input).with_channel("mychannel");
    assert_eq!(tx.message_type(), Type::Transaction);
    assert_eq!(tx.txid, "tx9");
    assert_eq!(tx.channel_id, "mychannel");
    assert_eq!(tx.decode_payload::<ChaincodeInput>().unwrap(), input);

    let get = ChaincodeMessage::get_state("tx9", "k");
    assert_eq!(get.decode_payload::<GetState>().unwrap().key, "k");
    let put = ChaincodeMessage::put_state("tx9", "k", b"v".to_vec());
    let put = put.decode_payload::<PutState>().unwrap();
    assert_eq!((put.key.as_str(), put.value.as_slice()), ("k", &b"v"[..]));
    let del = ChaincodeMessage::del_state("tx9", "k");
    assert_eq!(del.decode_payload::<DelState>().unwrap().key, "k");
    let done = ChaincodeMessage::completed("tx9", &Response::error(404, "not found"));
    let response = done.decode_payload::<Response>().unwrap();
    assert!(!response.is_ok());
    assert_eq!(response.message, "not found");
    let err = ChaincodeMessage::error("tx9", "boom");
    assert_eq!(err.payload_text(), "boom");
    assert!(Response::ok(Vec::new()).is_ok());
}

#[test]
fn bad_payload_error_names_message_and_payload_types() {
    let msg = ChaincodeMessage {
        r#type: Type::Register as i32,
        payload: vec![0xff, 0xff, 0xff],
        ..Default::default()
    };
    let err = msg.decode_payload::<ChaincodeId>().unwrap_err();
    assert!(matches!(err, ProtoError::DecodePayload { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot decode REGISTER payload as ChaincodeID: "),
        "{err}"
    );

    let unknown = ChaincodeMessage {
        r#type: 99,
        payload: vec![0x0a],
        ..Default::default()
    };
    assert_eq!(unknown.type_label(), "UNKNOWN(99)");
    assert_eq!(unknown.message_type(), Type::Undefined);
    let err = unknown.decode_payload::<ChaincodeInput>().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot decode UNKNOWN(99) payload as ChaincodeInput: "),
        "{err}"
    );
}

#[test]
fn registered_name_refuses_wrong_type_and_bad_names() {
    let err = ChaincodeMessage::ready().registered_name().unwrap_err();
    assert_eq!(err.to_string(), "expected REGISTER message, got READY");

    let no_version = ChaincodeMessage {
        r#type: Type::Register as i32,
        payload: ChaincodeId {
            name: "mycc".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    };
    let err = no_version.registered_name().unwrap_err();
    assert!(matches!(err, ProtoError::InvalidName { .. }), "{err:?}");
    assert!(err.to_string().contains("\"mycc\" has no version"), "{err}");
}

#[test]
fn truncated_message_is_an_error() {
    let mut bytes = hex::decode("08011a0a12086d7963633a312e30").unwrap();
    bytes.pop();
    let err = ChaincodeMessage::decode_bytes(&bytes).unwrap_err();
    assert!(matches!(err, ProtoError::DecodeMessage { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot decode ChaincodeMessage: ")
    );
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Each decode either succeeds or returns an error; none may panic.
        if let Ok(msg) = ChaincodeMessage::decode_bytes(&bytes) {
            let _ = msg.type_label();
            let _ = msg.decode_payload::<ChaincodeId>();
            let _ = msg.decode_payload::<ChaincodeInput>();
            let _ = msg.decode_payload::<Response>();
            let _ = msg.registered_name();
            // Whatever decoded re-encodes and decodes to the same message.
            let again = ChaincodeMessage::decode_bytes(&msg.encode_to_vec()).unwrap();
            prop_assert_eq!(again, msg);
        }
        let _ = ChaincodeDeploymentSpec::decode(bytes.as_slice());
        let _ = PutState::decode(bytes.as_slice());
    }

    #[test]
    fn any_transaction_round_trips(
        txid in "[a-z0-9]{0,16}",
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..6),
    ) {
        let input = ChaincodeInput { args, ..Default::default() };
        let msg = ChaincodeMessage::transaction(&txid, &input);
        let back = ChaincodeMessage::decode_bytes(&msg.encode_to_vec()).unwrap();
        prop_assert_eq!(&back.txid, &txid);
        prop_assert_eq!(back.decode_payload::<ChaincodeInput>().unwrap(), input);
    }
}

#[test]
fn service_names_match_fabric() {
    assert_eq!(
        chaincode_proto::chaincode_support_server::SERVICE_NAME,
        "protos.ChaincodeSupport"
    );
    assert_eq!(
        chaincode_proto::chaincode_server::SERVICE_NAME,
        "protos.Chaincode"
    );
}
