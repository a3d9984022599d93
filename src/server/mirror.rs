//! The mirror's writes on the server side: one workspace's applications read once, and each
//! save, delete or settings write checked with the domain's rules against them (and the
//! catalog) before it is stored. The single-record server functions and the batch the
//! browser's queue sends both go through [`WorkspaceMirror`], so a batch is checked exactly
//! as its writes would be one by one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::storage::{Storage, WorkspaceCredentials};
use crate::domain::validation::ValidationRules;
use crate::error::AppError;
use crate::model::{
    Application, ApplicationServerSettings, MirrorAnswer, MirrorEntry, MirrorWrite, RuntimePackage,
    SystemResources,
};

/// What a save stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub updated_at: DateTime<Utc>,
    /// True when this save made the record (false: it replaced the stored one).
    pub created: bool,
    /// The rules' warnings (e.g. a required runtime not installed yet): they don't block it.
    pub warnings: Vec<String>,
}

/// One workspace's mirror, for a run of writes.
pub struct WorkspaceMirror {
    storage: Storage,
    workspace: Option<Uuid>,
    applications: Vec<Application>,
    catalog: Vec<RuntimePackage>,
    /// The workspace made by a first save, whose cookie the caller must set.
    created: Option<WorkspaceCredentials>,
}

impl WorkspaceMirror {
    /// Reads the workspace's applications and the catalog (`None`: the caller has no
    /// workspace yet; a save makes one).
    pub async fn open(storage: Storage, workspace: Option<Uuid>) -> Result<Self, AppError> {
        let applications = match workspace {
            Some(id) => storage.list_applications(id).await?,
            None => Vec::new(),
        };
        let catalog = storage.list_runtime_packages().await?;
        Ok(Self {
            storage,
            workspace,
            applications,
            catalog,
            created: None,
        })
    }

    /// The credentials of a workspace this run made, if it made one.
    pub fn created_workspace(&self) -> Option<&WorkspaceCredentials> {
        self.created.as_ref()
    }

    /// Stores one application (insert, or replace by id: a rename is a save with the same id
    /// and a new name), refused with every reason when it breaks the rules against the
    /// workspace's other applications and the catalog.
    pub async fn save(&mut self, application: Application) -> Result<Saved, AppError> {
        // Checked against the workspace as it would be after the save, then put back if
        // it is refused or can't be stored.
        let position = self
            .applications
            .iter()
            .position(|other| other.id == application.id);
        let previous = match position {
            Some(index) => Some(std::mem::replace(
                &mut self.applications[index],
                application.clone(),
            )),
            None => {
                self.applications.push(application.clone());
                None
            }
        };
        let stored = self.check_and_put(&application).await;
        if stored.is_err() {
            match (position, previous) {
                (Some(index), Some(previous)) => self.applications[index] = previous,
                _ => {
                    self.applications.pop();
                }
            }
        }
        let (updated_at, warnings) = stored?;
        Ok(Saved {
            updated_at,
            created: position.is_none(),
            warnings,
        })
    }

    /// Checks `application` against the rules with the workspace's applications as they
    /// would be after its save, and stores it if it passes.
    async fn check_and_put(
        &mut self,
        application: &Application,
    ) -> Result<(DateTime<Utc>, Vec<String>), AppError> {
        let (resources, settings) = (
            SystemResources::default(),
            ApplicationServerSettings::default(),
        );
        let result = ValidationRules::new(&self.catalog, &self.applications, &resources, &settings)
            .validate_application(application);
        if !result.valid {
            return Err(AppError::invalid(
                format!("The application “{}” was not saved.", application.name),
                result.errors,
            ));
        }
        // Only a record that passed gets a workspace made for it: a refused save changes
        // nothing.
        let workspace = match self.workspace {
            Some(id) => id,
            None => {
                let credentials = self.storage.create_workspace().await?;
                let id = credentials.id;
                self.created = Some(credentials);
                self.workspace = Some(id);
                id
            }
        };
        let updated_at = self.storage.put_application(workspace, application).await?;
        Ok((updated_at, result.warnings))
    }

    /// Removes one application and every share link to it; false when the mirror lacks it.
    pub async fn delete(&mut self, id: Uuid) -> Result<bool, AppError> {
        let Some(workspace) = self.workspace else {
            return Ok(false);
        };
        let deleted = self.storage.delete_application(workspace, id).await?;
        self.applications.retain(|application| application.id != id);
        Ok(deleted)
    }

    /// Stores the workspace's settings, checked against the rules and its applications.
    pub async fn save_settings(
        &mut self,
        settings: &ApplicationServerSettings,
    ) -> Result<(), AppError> {
        let Some(workspace) = self.workspace else {
            return Err(AppError::not_found(
                "This browser's workspace on the server",
            ));
        };
        let resources = SystemResources::default();
        let checked = ValidationRules::new(&self.catalog, &self.applications, &resources, settings)
            .validate_settings();
        if !checked.valid {
            return Err(AppError::invalid(
                "These settings were refused.",
                checked.errors,
            ));
        }
        self.storage.put_settings(workspace, settings).await?;
        Ok(())
    }

    /// Applies one entry of a batch and says how it went. Deleting what the mirror lacks is
    /// stored (writes are idempotent); a rule's refusal is final, anything else is retried.
    pub async fn apply(&mut self, entry: MirrorEntry) -> MirrorAnswer {
        let result = match entry.write {
            MirrorWrite::Save { application } => {
                if application.id != entry.id {
                    return MirrorAnswer::Refused {
                        reasons: vec![format!(
                            "id: the entry is for {} but the record's id is {}",
                            entry.id, application.id
                        )],
                    };
                }
                self.save(*application).await.map(|_| ())
            }
            MirrorWrite::Delete { .. } => self.delete(entry.id).await.map(|_| ()),
            MirrorWrite::Settings { settings } => self.save_settings(&settings).await,
        };
        match result {
            Ok(()) => MirrorAnswer::Stored,
            Err(error) => match error.mirror_refusal() {
                Some(reasons) => MirrorAnswer::Refused { reasons },
                None => MirrorAnswer::Failed {
                    reason: error.to_string(),
                },
            },
        }
    }
}
