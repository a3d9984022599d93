//! Server binary: parses the command line and runs the server (see `host::main_from_args`).

// The page's view types are monomorphized here too (see lib.rs).
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    webvm_appserver::host::main_from_args().await
}
