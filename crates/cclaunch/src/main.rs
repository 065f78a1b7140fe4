//! The `cclaunch` binary; everything lives in the library.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(cclaunch::main_with_args(std::env::args().collect()));
}
