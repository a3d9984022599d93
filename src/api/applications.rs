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
    let mut mirror = open_mirror().await?;
    let (id, name) = (application.id, application.name.to_string());
    let saved = mirror.save(application).await?;
    set_cookie_of_new_workspace(&mirror)?;
    Ok(SavedApplication {
        id,
        name,
        updated_at: saved.updated_at,
        created: saved.created,
        warnings: saved.warnings,
    })
}

/// Removes one application from the caller's workspace mirror, and every share link to it.
#[server(prefix = "/api", endpoint = "delete_application", input = Json)]
pub async fn delete_application(id: Uuid) -> Result<(), AppError> {
    if open_mirror().await?.delete(id).await? {
        Ok(())
    } else {
        Err(AppError::not_found("This application"))
    }
}

/// The most entries one `apply_mirror_writes` takes (the browser's queue hands out as many).
pub const MAX_BATCH_ENTRIES: usize = crate::domain::mirror_queue::BATCH;
/// The largest `apply_mirror_writes` body: the queue's byte budget and the JSON around it.
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;

/// Applies a batch of the browser's queued mirror writes (saves, deletes, the settings) in
/// order, each checked as its single-record function would check it, and answers each in
/// the batch's order. An entry that can't be read is refused naming its field, without
/// holding up the others. One request, so the write quota counts a batch once.
#[server(prefix = "/api", endpoint = "apply_mirror_writes", input = Json)]
pub async fn apply_mirror_writes(
    writes: Vec<serde_json::Value>,
) -> Result<Vec<crate::model::MirrorAnswer>, AppError> {
    use crate::model::MirrorAnswer;

    if writes.len() > MAX_BATCH_ENTRIES {
        return Err(AppError::invalid(
            "The batch of mirror writes was refused.",
            vec![format!(
                "writes: {} entries, more than the {MAX_BATCH_ENTRIES} a batch may hold",
                writes.len()
            )],
        ));
    }
    let mut mirror = open_mirror().await?;
    let mut answers = Vec::with_capacity(writes.len());
    for (index, value) in writes.into_iter().enumerate() {
        let size = serde_json::to_vec(&value).map_or(0, |json| json.len());
        let answer = if size > SAVE_BODY_LIMIT {
            MirrorAnswer::Refused {
                reasons: vec![format!(
                    "writes[{index}]: {size} bytes, more than the {SAVE_BODY_LIMIT} a record may take"
                )],
            }
        } else {
            match parse_mirror_entry(value, &format!("writes[{index}]")) {
                Ok(entry) => mirror.apply(entry).await,
                Err(problem) => MirrorAnswer::Refused {
                    reasons: vec![problem],
                },
            }
        };
        answers.push(answer);
    }
    set_cookie_of_new_workspace(&mirror)?;
    Ok(answers)
}

/// The caller's workspace mirror (it may have no workspace yet).
#[cfg(feature = "ssr")]
async fn open_mirror() -> Result<crate::server::mirror::WorkspaceMirror, AppError> {
    let storage = context::storage()?;
    let workspace = context::current_workspace(&storage).await?;
    crate::server::mirror::WorkspaceMirror::open(storage, workspace).await
}

/// Gives the browser the cookie of the workspace its first save made, if it made one.
#[cfg(feature = "ssr")]
fn set_cookie_of_new_workspace(
    mirror: &crate::server::mirror::WorkspaceMirror,
) -> Result<(), AppError> {
    match mirror.created_workspace() {
        Some(credentials) => context::set_workspace_cookie(credentials),
        None => Ok(()),
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
        AppError::invalid(
            "The application record was refused.",
            vec![problem_at("", &path, message)],
        )
    })
}

/// Parses one entry of a batch; the problem names the field under `prefix`
/// (`writes[3].application.execution.port`) and the rule.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
fn parse_entry<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        problem_at(
            prefix,
            &error.path().to_string(),
            &error.inner().to_string(),
        )
    })
}

/// Parses one entry of a batch, `{"id": …, "kind": …, …}`, field by field, so that a problem
/// names the field inside the record too (`writes[3].application.execution.port`): serde
/// loses the path inside an internally tagged enum.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
fn parse_mirror_entry(
    mut value: serde_json::Value,
    prefix: &str,
) -> Result<crate::model::MirrorEntry, String> {
    use crate::model::MirrorWrite;

    let Some(object) = value.as_object_mut() else {
        return Err(problem_at(prefix, "", "expected an object"));
    };
    let mut field = |name: &str| {
        object
            .remove(name)
            .ok_or_else(|| problem_at(prefix, "", &format!("missing field `{name}`")))
    };
    let id = parse_entry(field("id")?, &format!("{prefix}.id"))?;
    let kind: String = parse_entry(field("kind")?, &format!("{prefix}.kind"))?;
    let write = match kind.as_str() {
        "save" => MirrorWrite::Save {
            application: parse_entry(field("application")?, &format!("{prefix}.application"))?,
        },
        "delete" => MirrorWrite::Delete {
            name: parse_entry(field("name")?, &format!("{prefix}.name"))?,
        },
        "settings" => MirrorWrite::Settings {
            settings: parse_entry(field("settings")?, &format!("{prefix}.settings"))?,
        },
        other => {
            return Err(problem_at(
                prefix,
                "kind",
                &format!("unknown kind `{other}`, expected one of `save`, `delete`, `settings`"),
            ))
        }
    };
    Ok(crate::model::MirrorEntry { id, write })
}

/// `prefix.path: message`, leaving out the empty parts.
fn problem_at(prefix: &str, path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    match (prefix.is_empty(), path.is_empty()) {
        (true, true) => message.to_string(),
        (true, false) => format!("{path}: {message}"),
        (false, true) => format!("{prefix}: {message}"),
        (false, false) => format!("{prefix}.{path}: {message}"),
    }
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

    #[test]
    fn unreadable_batch_entries_name_their_index_and_field() {
        let id = "00000000-0000-0000-0000-000000000001";
        let cases = [
            (
                serde_json::json!({"id": id, "kind": "delete", "name": "blog"}),
                None,
            ),
            (
                serde_json::json!({"id": 7, "kind": "delete", "name": "blog"}),
                Some("writes[2].id: "),
            ),
            (
                serde_json::json!({"id": id, "kind": "rename"}),
                Some("writes[2].kind: unknown kind `rename`"),
            ),
            (
                serde_json::json!({"id": id, "kind": "settings", "settings": 3}),
                Some("writes[2].settings: "),
            ),
        ];
        for (value, expected) in cases {
            let parsed = parse_mirror_entry(value.clone(), "writes[2]");
            match (parsed, expected) {
                (Ok(_), None) => {}
                (Err(problem), Some(expected)) => {
                    assert!(problem.starts_with(expected), "{value}: {problem}")
                }
                (other, _) => panic!("{value}: {other:?}"),
            }
        }
    }
}
