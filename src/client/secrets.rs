//! Secrets at rest in this browser: [`seal`] turns clear text (an environment secret, a
//! GitHub token) into a [`SealedSecret`] with AES-256-GCM under a non-extractable WebCrypto
//! key that this browser generates once and keeps in IndexedDB (`js/secret_box.js`);
//! [`unseal`] opens it again, here only. The server never sees the key, so what it mirrors
//! is opaque to it.

use crate::model::SealedSecret;

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// WebCrypto exists only in a secure context (HTTPS or localhost).
    #[error("secrets can only be sealed and opened on a page served over HTTPS or from localhost (WebCrypto needs a secure context)")]
    InsecureContext,
    /// The key id is not this browser's key.
    #[error("this secret was sealed in another browser (or this browser's storage was cleared); enter it again here")]
    OtherBrowser,
    /// The ciphertext does not authenticate under this browser's key.
    #[error("this sealed secret is damaged and cannot be opened; enter it again")]
    Damaged,
    /// IndexedDB or WebCrypto failed.
    #[error("this browser could not seal or open the secret: {0}")]
    Browser(String),
    /// Only in the browser.
    #[error("secrets can only be sealed and opened in the browser, with JavaScript")]
    BrowserOnly,
}

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::prelude::*;

    use super::SecretError;
    use crate::client::vm::bridge::js_error;
    use crate::model::SealedSecret;

    #[wasm_bindgen(module = "/js/secret_box.js")]
    extern "C" {
        #[wasm_bindgen(js_name = sealSecret, catch)]
        async fn seal_secret(clear: &str) -> Result<JsValue, JsValue>;

        #[wasm_bindgen(js_name = unsealSecret, catch)]
        async fn unseal_secret(
            key_id: &str,
            nonce: &str,
            ciphertext: &str,
        ) -> Result<JsValue, JsValue>;
    }

    fn secret_error(error: &JsValue) -> SecretError {
        let (name, message) = js_error(error);
        match name.as_str() {
            "InsecureContextError" => SecretError::InsecureContext,
            "OtherBrowserError" => SecretError::OtherBrowser,
            "DamagedSecretError" => SecretError::Damaged,
            _ => SecretError::Browser(message),
        }
    }

    pub async fn seal(clear: &str) -> Result<SealedSecret, SecretError> {
        let sealed = seal_secret(clear)
            .await
            .map_err(|error| secret_error(&error))?;
        let text = sealed
            .as_string()
            .ok_or_else(|| SecretError::Browser("sealing gave no text".into()))?;
        SealedSecret::parse(&text).map_err(|error| SecretError::Browser(error.to_string()))
    }

    pub async fn unseal(sealed: &SealedSecret) -> Result<String, SecretError> {
        unseal_secret(sealed.key_id(), sealed.nonce(), sealed.ciphertext())
            .await
            .map_err(|error| secret_error(&error))?
            .as_string()
            .ok_or(SecretError::Damaged)
    }
}

/// Seals `clear` with this browser's key (generated and stored on first use).
pub async fn seal(clear: &str) -> Result<SealedSecret, SecretError> {
    #[cfg(feature = "hydrate")]
    {
        browser::seal(clear).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = clear;
        Err(SecretError::BrowserOnly)
    }
}

/// Opens a secret sealed in this browser; one sealed elsewhere is
/// [`SecretError::OtherBrowser`]. The clear text must go only where it is used (a request
/// header, the guest's environment) and never into a log.
pub async fn unseal(sealed: &SealedSecret) -> Result<String, SecretError> {
    #[cfg(feature = "hydrate")]
    {
        browser::unseal(sealed).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = sealed;
        Err(SecretError::BrowserOnly)
    }
}
