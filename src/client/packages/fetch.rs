//! Downloads of a plan's `.deb` files with byte progress, each verified by SHA-256
//! (WebCrypto, or the built-in SHA-256 outside a secure context) before anything touches the
//! VM.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

use super::{js_text, mib, Reporter};
use crate::domain::package_install::{verify_checksum, FileToFetch, InstallPlan, Phase};

#[wasm_bindgen(module = "/js/package_io.js")]
extern "C" {
    #[wasm_bindgen(js_name = fetchBytes, catch)]
    async fn fetch_bytes(url: &str, on_progress: &js_sys::Function) -> Result<JsValue, JsValue>;
}

/// Downloads every file of `plan` from `base` (the prefix of the `.deb` URLs) and verifies
/// it: `(name, bytes)` in plan order, or why not.
pub(super) async fn download_verified(
    plan: &InstallPlan,
    base: &str,
    report: &Reporter,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    download_files(&plan.files, base, report).await
}

/// Downloads each of `files` from `base` + its name and verifies its SHA-256: `(name,
/// bytes)` in order, or why not (a mismatch names both hashes).
pub(super) async fn download_files(
    files: &[FileToFetch],
    base: &str,
    report: &Reporter,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let total: u64 = files.iter().map(|file| file.size).sum();
    let mut said_no_web_crypto = false;
    let download_started = crate::client::vm::bridge::now_ms();
    let mut downloaded = 0u64;
    let mut verified = Vec::with_capacity(files.len());
    for file in files {
        let before = downloaded;
        let name = file.name.clone();
        let progress_report = report.clone();
        let on_progress = Closure::<dyn FnMut(f64, f64)>::new(move |loaded: f64, _: f64| {
            let done = before + loaded.max(0.0) as u64;
            progress_report.phase(
                Phase::Downloading {
                    done,
                    total: total.max(done),
                },
                format!(
                    "Downloading {name} ({} of {})",
                    mib(done),
                    mib(total.max(done))
                ),
            );
        });
        let url = format!("{base}{}", file.name);
        let bytes = fetch_bytes(&url, on_progress.as_ref().unchecked_ref())
            .await
            .map_err(|error| js_text(&error))?;
        drop(on_progress);
        let bytes: Uint8Array = bytes.unchecked_into();
        let web_crypto = crate::client::vm::bridge::sha256_hex(&bytes)
            .await
            .map_err(|error| format!("could not hash {}: {}", file.name, js_text(&error)))?
            .as_string();
        let hash = match web_crypto {
            Some(hash) => hash,
            None => {
                if !said_no_web_crypto {
                    said_no_web_crypto = true;
                    report.log("WebCrypto is not available here (the page is not in a secure context); verifying with the built-in SHA-256");
                }
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(bytes.to_vec()))
            }
        };
        verify_checksum(&file.name, &file.sha256, &hash)?;
        let size = u64::from(bytes.length());
        downloaded += size;
        report.log(format!(
            "{}: {} downloaded, SHA-256 verified ({}…)",
            file.name,
            mib(size),
            &hash[..16.min(hash.len())]
        ));
        verified.push((file.name.clone(), bytes.to_vec()));
    }
    let seconds = ((crate::client::vm::bridge::now_ms() - download_started) / 1000.0).max(0.001);
    report.log(format!(
        "all {} files verified: {} in {seconds:.1} s ({:.1} MiB/s)",
        verified.len(),
        mib(downloaded),
        downloaded as f64 / (1024.0 * 1024.0) / seconds
    ));
    Ok(verified)
}
