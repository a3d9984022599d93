//! Server functions that write the application mirror: the browser's IndexedDB record is the
//! source of truth and sends whole records; they are checked with the domain's rules first.
//!
//! `save_application` reads its body with [`MirrorJson`], so a record that breaks a rule the
//! model enforces while parsing (a reserved name, a clear-text secret) is refused with that
//! rule and the field, instead of the generic "could not be read".

use leptos::prelude::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use server_fn::codec::{Encoding, FromReq, IntoReq, Json};
use server_fn::error::{FromServerFnError, ServerFnErrorErr};
use server_fn::request::{ClientReq, Req};
use server_fn::{ContentType, Http};
use uuid::Uuid;

use crate::error::AppError;
use crate::model::Application;

#[cfg(feature = "ssr")]
use super::context;

/// The largest `save_application` body accepted: a whole record with its file list.
pub const SAVE_BODY_LIMIT: usize = 256 * 1024;

/// What a save stored: the record's id and name as the mirror now has them, when, and the
/// rules' warnings (e.g. a required runtime not installed yet), which do not block a save.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedApplication {
    pub id: Uuid,
    pub name: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// True when this save made the record (false: it replaced the stored one).
    pub created: bool,
    pub warnings: Vec<String>,
}

/// Stores one application record in the caller's workspace mirror (insert, or replace by
/// id: a rename is a save with the same id and a new name). Gives the caller a workspace
/// (and its cookie) if it has none yet. Refused, with every reason, when the record breaks
/// the validation rules against the workspace's other applications and the catalog.
#[server(prefix = "/api", endpoint = "save_application", protocol = Http<MirrorJson, Json>)]
pub async fn save_application(application: Application) -> Result<SavedApplication, AppError> {
    use crate::domain::validation::ValidationRules;
    use crate::model::{ApplicationServerSettings, SystemResources};

    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    let mut applications = match workspace {
        Some(id) => storage.list_applications(id).await?,
        None => Vec::new(),
    };
    let existed = applications.iter().any(|other| other.id == application.id);
    applications.retain(|other| other.id != application.id);
    applications.push(application.clone());
    let catalog = storage.list_runtime_packages().await?;
    let (resources, settings) = (
        SystemResources::default(),
        ApplicationServerSettings::default(),
    );
    let rules = ValidationRules::new(&catalog, &applications, &resources, &settings);
    let result = rules.validate_application(&application);
    if !result.valid {
        return Err(AppError::invalid(
            format!("The application “{}” was not saved.", application.name),
            result.errors,
        ));
    }
    // Only a record that passed gets a workspace made for it: a refused save changes nothing.
    let workspace = match workspace {
        Some(id) => id,
        None => {
            let credentials = storage.create_workspace().await?;
            context::set_workspace_cookie(&credentials)?;
            credentials.id
        }
    };
    let updated_at = storage.put_application(workspace, &application).await?;
    Ok(SavedApplication {
        id: application.id,
        name: application.name.to_string(),
        updated_at,
        created: !existed,
        warnings: result.warnings,
    })
}

/// Removes one application from the caller's workspace mirror, and every share link to it.
#[server(prefix = "/api", endpoint = "delete_application", input = Json)]
pub async fn delete_application(id: Uuid) -> Result<(), AppError> {
    let not_found = || AppError::not_found("This application");
    let storage = context::storage()?;
    let Some(workspace) = context::current_workspace(&storage).await? else {
        return Err(not_found());
    };
    if storage.delete_application(workspace, id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// JSON in a `POST` body, like `server_fn`'s `Json`, except that arguments that don't parse
/// are refused as [`AppError::Invalid`] naming the field and the rule (the model's newtypes
/// say which) rather than as an unreadable request.
pub struct MirrorJson;

impl ContentType for MirrorJson {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl Encoding for MirrorJson {
    const METHOD: http::Method = http::Method::POST;
}

impl<Request> IntoReq<MirrorJson, Request, AppError> for SaveApplication
where
    Request: ClientReq<AppError>,
{
    fn into_req(self, path: &str, accepts: &str) -> Result<Request, AppError> {
        let body = serde_json::to_vec(&self).map_err(|error| {
            AppError::from_server_fn_error(ServerFnErrorErr::Serialization(error.to_string()))
        })?;
        Request::try_new_post_bytes(path, MirrorJson::CONTENT_TYPE, accepts, body.into())
    }
}

impl<Request> FromReq<MirrorJson, Request, AppError> for SaveApplication
where
    Request: Req<AppError> + Send + 'static,
{
    async fn from_req(request: Request) -> Result<Self, AppError> {
        let body = request.try_into_bytes().await?;
        parse_arguments(&body)
    }
}

/// Parses JSON arguments; a refusal names the field (`application.execution.port`) and the
/// rule, without the parser's line and column.
fn parse_arguments<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.inner();
        let message = inner.to_string();
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        let problem = if path == "." || path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        AppError::invalid("The application record was refused.", vec![problem])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_records_name_the_field_and_the_rule() {
        let cases = [
            (r#"{"application": {"id": 1}}"#, "application.id: "),
            (r#"{"application": "#, "EOF"),
            (r#"[]"#, "expected struct SaveApplication"),
        ];
        for (body, expected) in cases {
            match parse_arguments::<SaveApplication>(body.as_bytes()) {
                Err(AppError::Invalid { problems, .. }) => {
                    assert_eq!(problems.len(), 1, "{body}");
                    assert!(problems[0].contains(expected), "{body}: {problems:?}");
                    assert!(!problems[0].contains(" at line "), "{problems:?}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
