//! Backup file, legacy application record and validation result types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Application, ApplicationServerSettings, FileRef, RuntimePackage, WebVMStatus};

/// Everything needed to restore an application server elsewhere.
///
/// `version` is the backup *format* version (see `domain::backup`). Secrets inside are
/// [`super::SealedSecret`]s only; clear text cannot be represented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationServerBackup {
    pub version: String,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub timestamp: DateTime<Utc>,
    pub webvm_state: WebVMStatus,
    pub applications: Vec<Application>,
    pub packages: Vec<RuntimePackage>,
    pub settings: ApplicationServerSettings,
}

/// An app of the earlier app-hosting system, before runtimes and lifecycle existed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyApp {
    pub name: String,
    pub files: Vec<FileRef>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub deployed_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub last_updated: DateTime<Utc>,
}

/// Outcome of a validation rule: errors block, warnings inform, suggestions help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    /// True exactly when `errors` is empty.
    pub valid: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<String>>,
}

impl Default for ValidationResult {
    fn default() -> Self {
        ValidationResult {
            valid: true,
            errors: Vec::new(),
            warnings: Vec::new(),
            suggestions: None,
        }
    }
}

impl ValidationResult {
    /// A valid result with nothing to say.
    pub fn ok() -> Self {
        ValidationResult::default()
    }

    /// Adds an error (the result becomes invalid).
    pub fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
        self.valid = false;
    }

    /// Adds a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Adds a suggestion, once.
    pub fn suggest(&mut self, message: impl Into<String>) {
        let message = message.into();
        let suggestions = self.suggestions.get_or_insert_with(Vec::new);
        if !suggestions.contains(&message) {
            suggestions.push(message);
        }
    }

    /// The suggestions, empty when there are none.
    pub fn suggestions(&self) -> &[String] {
        self.suggestions.as_deref().unwrap_or_default()
    }

    /// Appends everything of `other`.
    pub fn merge(&mut self, other: ValidationResult) {
        for error in other.errors {
            self.error(error);
        }
        self.warnings.extend(other.warnings);
        for suggestion in other.suggestions.unwrap_or_default() {
            self.suggest(suggestion);
        }
    }

    /// Appends everything of `other`, each message prefixed with `context: `.
    pub fn merge_with_context(&mut self, context: &str, other: ValidationResult) {
        for error in other.errors {
            self.error(format!("{context}: {error}"));
        }
        for warning in other.warnings {
            self.warn(format!("{context}: {warning}"));
        }
        for suggestion in other.suggestions.unwrap_or_default() {
            self.suggest(format!("{context}: {suggestion}"));
        }
    }
}
