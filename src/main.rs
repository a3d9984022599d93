//! Server binary: parses the command line and runs the server (see `host::main_from_args`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    webvm_appserver::host::main_from_args().await
}
