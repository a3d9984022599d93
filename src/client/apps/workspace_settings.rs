//! The workspace's settings (the seed's `ApplicationStore.settings`), kept in this browser's
//! application record: checked by the domain's rules, written with the record, used for new
//! applications' ports and restart policy, deploy limits, release retention and log budgets,
//! carried by backups.

use leptos::prelude::*;

use super::{AppManager, AppsError};
use crate::domain::validation::ValidationRules;
use crate::model::ApplicationServerSettings;

impl AppManager {
    /// The settings in effect (tracked).
    pub fn settings_tracked(&self) -> ApplicationServerSettings {
        self.book.with(|book| book.settings.clone())
    }

    /// Checks `settings` against the rules and this workspace's applications and stores
    /// them; refused with every reason, else the warnings (e.g. an application outside a
    /// new port range keeps its port).
    pub async fn save_settings(
        &self,
        settings: ApplicationServerSettings,
    ) -> Result<Vec<String>, AppsError> {
        let applications: Vec<_> = self
            .book
            .with_untracked(|book| book.applications.values().cloned().collect());
        let resources = self
            .vm
            .status
            .with_untracked(|status| status.system_resources.clone());
        let checked = self.packages.with_untracked(|packages| {
            ValidationRules::new(packages.iter(), &applications, &resources, &settings)
                .validate_settings()
        });
        if !checked.valid {
            return Err(AppsError::Invalid(checked.errors));
        }
        self.store_settings(settings).await?;
        Ok(checked.warnings)
    }
}

#[cfg(feature = "hydrate")]
use crate::domain::mirror_queue::{MirrorWrite, SETTINGS_RECORD};

#[cfg(feature = "hydrate")]
impl AppManager {
    async fn store_settings(&self, settings: ApplicationServerSettings) -> Result<(), AppsError> {
        let queued = Box::new(settings.clone());
        self.change(move |book| {
            book.settings = settings;
            Ok(())
        })
        .await?;
        self.enqueue_mirror([(SETTINGS_RECORD, MirrorWrite::Settings { settings: queued })]);
        Ok(())
    }
}

#[cfg(not(feature = "hydrate"))]
impl AppManager {
    async fn store_settings(&self, _settings: ApplicationServerSettings) -> Result<(), AppsError> {
        Err(AppsError::BrowserOnly)
    }
}
