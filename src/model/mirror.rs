//! The server mirror's wire format: the writes the browser's queue sends, in batches, and
//! the server's answer to each.

use serde::{Deserialize, Serialize};

use super::{Application, ApplicationId, ApplicationServerSettings};

/// One write to the mirror (the browser's queue keeps these too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum MirrorWrite {
    Save {
        application: Box<Application>,
    },
    Delete {
        name: String,
    },
    /// The workspace's settings.
    Settings {
        settings: Box<ApplicationServerSettings>,
    },
}

/// A write for the record `id`, as one entry of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorEntry {
    pub id: ApplicationId,
    #[serde(flatten)]
    pub write: MirrorWrite,
}

/// The server's answer to one entry of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum MirrorAnswer {
    /// Written (or, for a delete, already absent).
    Stored,
    /// Refused by the rules, with every reason: resending it can't help.
    Refused { reasons: Vec<String> },
    /// Not written for a passing reason (the database failed): worth retrying.
    Failed { reason: String },
}
