//! The static sample binaries: really static, and runnable.

use std::process::Command;

use chaincode_samples::static_sample;

/// True when the ELF64 file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u64_at = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&elf[at..at + 8]);
        u64::from_le_bytes(bytes) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes([elf[at], elf[at + 1], elf[at + 2], elf[at + 3]]) == 3 // PT_INTERP
    })
}

#[test]
fn static_kv_is_a_static_elf_and_runs() {
    let kv = static_sample("kv").expect("static build of kv");
    let elf = std::fs::read(&kv).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not an ELF file", kv.display());
    assert_eq!(elf[4], 2, "expected ELF64");
    assert!(
        !has_interpreter(&elf),
        "{} has a PT_INTERP header",
        kv.display()
    );
    assert!(
        !elf.windows(b"/lib64/ld-linux".len())
            .any(|w| w == b"/lib64/ld-linux"),
        "{} names the dynamic loader",
        kv.display()
    );
    if let Ok(ldd) = Command::new("ldd").arg(&kv).output() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&ldd.stdout),
            String::from_utf8_lossy(&ldd.stderr)
        );
        assert!(
            text.contains("not a dynamic executable") || text.contains("statically linked"),
            "ldd says: {text}"
        );
    }
    let out = Command::new(&kv).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kv {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_dynamic_build_is_told_apart() {
    // The check above must be able to fail: the ordinary build has a loader.
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_kv")).unwrap();
    assert!(has_interpreter(&dynamic));
}

#[test]
fn static_faulty_is_built_too_and_unknown_names_are_refused() {
    let faulty = static_sample("faulty").expect("static build of faulty");
    let status = Command::new(&faulty)
        .arg("--mode=crash-before-register")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let err = static_sample("nope").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
