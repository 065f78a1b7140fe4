//! `cclaunch package`: writes a chaincode binary as a deployment spec file
//! `{name}.{version}` that the peer's file-system spec store reads.

use std::path::{Path, PathBuf};

use chaincode_proto::chaincode_deployment_spec::ExecutionEnvironment;
use chaincode_proto::chaincode_spec;
use chaincode_proto::prost::Message;
use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeId, ChaincodeName, ChaincodeSpec};
use serde_json::json;

use crate::error::CliError;
use crate::output::{Output, outln};

/// The deployment spec of `binary` as `chaincode`: the binary packed as the
/// code package, executed in the `DOCKER` environment (that is, by the
/// peer's user-chaincode executor).
pub fn deployment_spec(
    binary: &Path,
    chaincode: &ChaincodeName,
) -> Result<ChaincodeDeploymentSpec, CliError> {
    let code_package = executor::package::package_binary(binary).map_err(|e| {
        CliError::new(format!("cannot package {chaincode}: {e}"))
            .with_hint("pass --binary the path of a chaincode executable")
    })?;
    Ok(spec_with_package(chaincode, code_package))
}

/// The deployment spec of `chaincode` holding `code_package`.
pub fn spec_with_package(
    chaincode: &ChaincodeName,
    code_package: Vec<u8>,
) -> ChaincodeDeploymentSpec {
    ChaincodeDeploymentSpec {
        chaincode_spec: Some(ChaincodeSpec {
            r#type: chaincode_spec::Type::Undefined as i32,
            chaincode_id: Some(ChaincodeId {
                path: String::new(),
                name: chaincode.name().to_owned(),
                version: chaincode.version().to_owned(),
            }),
            input: None,
            timeout: 0,
        }),
        effective_date: None,
        code_package,
        exec_env: ExecutionEnvironment::Docker as i32,
    }
}

/// Packs `binary` and writes `{out}/{name}.{version}`; returns the path.
pub fn write_package(
    binary: &Path,
    name: &str,
    version: &str,
    out: &Path,
) -> Result<PathBuf, CliError> {
    // Checked before anything is read or written: the file name is built
    // from these, and Fabric's rules leave no '/', no leading '.', no '..'.
    let chaincode =
        ChaincodeName::new(name, version).map_err(|e| CliError::usage(e.to_string()))?;
    let (name, version) = (chaincode.name(), chaincode.version());
    let spec = deployment_spec(binary, &chaincode)?;
    std::fs::create_dir_all(out).map_err(|e| {
        CliError::new(format!(
            "cannot create the packages directory {}: {e}",
            out.display()
        ))
    })?;
    let path = out.join(format!("{name}.{version}"));
    // Write then rename, so that a peer never reads half a package.
    let partial = out.join(format!(".{name}.{version}.partial"));
    std::fs::write(&partial, spec.encode_to_vec())
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// `cclaunch package`.
pub fn run(
    binary: &Path,
    name: &str,
    version: &str,
    out: &Path,
    output: Output,
) -> Result<(), CliError> {
    let path = write_package(binary, name, version, out)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if output.json {
        output.json_line(&json!({
            "chaincode": format!("{name}:{version}"),
            "path": path.display().to_string(),
            "bytes": bytes,
        }))?;
    } else {
        outln!(
            "wrote {} ({bytes} bytes) for {name}:{version}",
            path.display()
        )?;
    }
    Ok(())
}
