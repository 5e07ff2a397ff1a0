//! The `vitasync` binary. Everything happens in `vitasync_api::cli`.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    vitasync_api::cli::main().await
}
