//! The diagram checked into `docs/fsm.md` must be the one the table renders.
//! To regenerate it: `UPDATE_FSM_DOC=1 cargo test -p launch-fsm --test diagram`.

use std::path::PathBuf;

const OPEN: &str = "```mermaid\n";
const CLOSE: &str = "```\n";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/fsm.md")
}

/// The byte range of the first mermaid block's body.
fn mermaid_block(doc: &str) -> Option<std::ops::Range<usize>> {
    let start = doc.find(OPEN)? + OPEN.len();
    let len = doc[start..].find(CLOSE)?;
    Some(start..start + len)
}

#[test]
fn checked_in_diagram_matches_the_table() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let range =
        mermaid_block(&doc).unwrap_or_else(|| panic!("{} has no ```mermaid block", path.display()));
    let rendered = launch_fsm::table::mermaid_diagram();
    if doc[range.clone()] == rendered {
        return;
    }
    if std::env::var_os("UPDATE_FSM_DOC").is_some_and(|v| v == "1") {
        let mut updated = doc.clone();
        updated.replace_range(range, &rendered);
        std::fs::write(&path, updated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("rewrote the diagram in {}", path.display());
        return;
    }
    panic!(
        "the diagram in {} disagrees with launch_fsm::table::launch_table.\n\
         Regenerate it with: UPDATE_FSM_DOC=1 cargo test -p launch-fsm --test diagram\n\
         --- checked in ---\n{}--- rendered ---\n{rendered}",
        path.display(),
        &doc[range],
    );
}

#[test]
fn block_extraction_finds_the_body() {
    let doc = "# t\n\n```mermaid\nstateDiagram-v2\n    A --> B\n```\n\ntext\n";
    let range = mermaid_block(doc).expect("a block");
    assert_eq!(&doc[range], "stateDiagram-v2\n    A --> B\n");
    assert_eq!(mermaid_block("no block here"), None);
}
