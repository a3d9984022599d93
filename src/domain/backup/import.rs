//! Reading a backup: any writer's version of the seed's `ApplicationServerBackup` (or the
//! legacy format `"1"`), every part parsed on its own so that *every* problem is found, each
//! named by its place (the application's index and name) and field; then every validation
//! rule. Nothing is changed here: [`import_backup`] returns a value or the problems.
//!
//! **Versions.** A backup's `version` is the writer's label, a free string. This program's
//! format version, [`CURRENT_FORMAT_VERSION`], is what it writes; it reads `"1"` as the legacy
//! app-hosting export and *any other* version as the seed's interfaces (the shape every
//! implementation shares), with a warning when it is not its own. A change to the shape this
//! program writes gets a new format version, and a reader for the old one here.
//!
//! **Leniency**, for backups written by other implementations: ISO 8601 dates
//! (`model::time`), optional fields absent, settings the seed does not spell out taking their
//! defaults, and fields this program does not know ignored with a warning naming each.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    migrate_v1_around, BackupError, BackupV1, CURRENT_FORMAT_VERSION, LEGACY_FORMAT_VERSION,
};
use crate::domain::validation::ValidationRules;
use crate::model::time::parse_iso8601;
use crate::model::{
    AppName, Application, ApplicationServerBackup, ApplicationServerSettings, DeploymentConfig,
    DeploymentSource, ExecutionConfig, PackageId, PackageStatus, Port, RuntimeCategory,
    RuntimePackage, WebVMStatus,
};

/// At most this many problems are named per record; a record that is wrong everywhere is
/// not a reason to list a thousand lines about it.
const MAX_PROBLEMS_PER_RECORD: usize = 10;

/// At most this many unknown fields are named in all (each is a warning, not a problem).
const MAX_IGNORED_WARNINGS: usize = 50;

/// The parts of the seed's `ApplicationServerBackup`.
const PARTS: [&str; 6] = [
    "version",
    "timestamp",
    "webvmState",
    "applications",
    "packages",
    "settings",
];

/// Where in a backup a problem or warning is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Place {
    /// The backup as a whole, or one of its parts other than the lists.
    Backup,
    /// `applications[index]`, with its name when it has one.
    Application { index: usize, name: Option<String> },
    /// `packages[index]`, with its id when it has one.
    Package { index: usize, id: Option<String> },
}

impl fmt::Display for Place {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (list, index, label) = match self {
            Place::Backup => return formatter.write_str("backup"),
            Place::Application { index, name } => ("applications", index, name),
            Place::Package { index, id } => ("packages", index, id),
        };
        write!(formatter, "{list}[{index}]")?;
        match label {
            Some(label) => write!(formatter, " '{label}'"),
            None => Ok(()),
        }
    }
}

/// One problem (it blocks the import) or warning (it does not), with its place and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub place: Place,
    /// The field's path inside the place, e.g. `execution.port`; empty for the whole place.
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn new(place: Place, field: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            place,
            field: field.into(),
            message: message.into(),
        }
    }

    fn backup(field: impl Into<String>, message: impl Into<String>) -> Self {
        Finding::new(Place::Backup, field, message)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.place, self.field.is_empty()) {
            (Place::Backup, true) => write!(formatter, "{}", self.message),
            (Place::Backup, false) => write!(formatter, "{}: {}", self.field, self.message),
            (place, true) => write!(formatter, "{place}: {}", self.message),
            (place, false) => write!(formatter, "{place}, {}: {}", self.field, self.message),
        }
    }
}

/// A backup that passed import, with the warnings the reading and the rules raised.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedBackup {
    pub backup: ApplicationServerBackup,
    pub warnings: Vec<Finding>,
}

/// Reads a backup of any writer and version, migrates the legacy format and validates
/// everything against the rules, with `catalog` (this server's package catalog) to resolve
/// runtime ids. All problems are listed; nothing is changed.
pub fn import_backup(
    json: &str,
    catalog: &[RuntimePackage],
) -> Result<ImportedBackup, BackupError> {
    import_backup_into(json, catalog, &BTreeSet::new())
}

/// [`import_backup`] for a workspace whose applications use the ports `taken`: a legacy
/// backup's apps, which had no ports, get ports outside them.
pub fn import_backup_into(
    json: &str,
    catalog: &[RuntimePackage],
    taken: &BTreeSet<Port>,
) -> Result<ImportedBackup, BackupError> {
    let value: Value =
        serde_json::from_str(json).map_err(|error| BackupError::Malformed(error.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(BackupError::Malformed(
            "the file is JSON but not an object: a backup is one {…} with a version, applications and packages".to_owned(),
        ));
    };
    let mut warnings = Vec::new();
    let (backup, mut problems) = match object.get("version") {
        Some(Value::String(version)) if version == LEGACY_FORMAT_VERSION => {
            match serde_json::from_value::<BackupV1>(value.clone()) {
                Ok(legacy) => {
                    let backup = migrate_v1_around(&legacy, taken)?;
                    let indices = Indices {
                        applications: (0..backup.applications.len()).collect(),
                        packages: Vec::new(),
                        complete: true,
                    };
                    (Some(Partial { backup, indices }), Vec::new())
                }
                Err(error) => (
                    None,
                    vec![Finding::backup(
                        "",
                        format!("legacy (version 1) backup: {error}"),
                    )],
                ),
            }
        }
        Some(Value::String(version)) => {
            if version != CURRENT_FORMAT_VERSION {
                warnings.push(Finding::backup(
                    "version",
                    format!(
                        "written as version '{}', not this program's format {CURRENT_FORMAT_VERSION}: read as the seed's ApplicationServerBackup",
                        shorten(version)
                    ),
                ));
            }
            parse_current(&value, &mut warnings)
        }
        Some(other) => (
            None,
            vec![Finding::backup(
                "version",
                format!("must be a string, not {}", kind_of(other)),
            )],
        ),
        None => (
            None,
            vec![Finding::backup(
                "version",
                "is missing: this is not a backup",
            )],
        ),
    };
    if let Some(partial) = &backup {
        let (more_problems, more_warnings) =
            validate_parsed(&partial.backup, &partial.indices, catalog);
        problems.extend(more_problems);
        warnings.extend(more_warnings);
    }
    match backup {
        Some(partial) if problems.is_empty() => Ok(ImportedBackup {
            backup: partial.backup,
            warnings,
        }),
        _ => Err(BackupError::Invalid { problems }),
    }
}

/// A backup of the records that parsed, with each record's index in the file, so the rules
/// can still check them and name them by their place.
struct Partial {
    backup: ApplicationServerBackup,
    indices: Indices,
}

/// Each parsed record's index in the file's lists.
#[derive(Debug, Clone, Default)]
struct Indices {
    applications: Vec<usize>,
    packages: Vec<usize>,
    /// Every record parsed (else the cross-record checks would report what is missing only
    /// because a record was unreadable).
    complete: bool,
}

/// Parses each part of a seed-shaped backup separately, collecting every problem. The
/// backup holds the records that parsed; it is `None` when a whole part is unreadable.
fn parse_current(value: &Value, warnings: &mut Vec<Finding>) -> (Option<Partial>, Vec<Finding>) {
    let mut problems = Vec::new();
    let mut ignored = Ignored::new(warnings);
    if let Some(object) = value.as_object() {
        for key in object.keys().filter(|key| !PARTS.contains(&key.as_str())) {
            ignored.note(Place::Backup, key);
        }
    }
    let templates = Templates::new();
    let timestamp = match value.get("timestamp") {
        None => {
            problems.push(Finding::backup("timestamp", "is missing"));
            None
        }
        Some(Value::String(text)) => parse_iso8601(text)
            .map_err(|error| problems.push(Finding::backup("timestamp", error.to_string())))
            .ok(),
        Some(other) => {
            problems.push(Finding::backup(
                "timestamp",
                format!("must be a date as text, not {}", kind_of(other)),
            ));
            None
        }
    };
    let defaults = serde_json::to_value(WebVMStatus::default()).unwrap_or(Value::Null);
    let webvm_state: Option<WebVMStatus> =
        parse_part(value, "webvmState", &defaults, &mut problems, &mut ignored);
    let settings = match value.get("settings") {
        None | Some(Value::Null) => {
            ignored.warnings.push(Finding::backup(
                "settings",
                "absent: every setting takes its default",
            ));
            Some(ApplicationServerSettings::default())
        }
        Some(_) => {
            let defaults =
                serde_json::to_value(ApplicationServerSettings::default()).unwrap_or(Value::Null);
            parse_part(value, "settings", &defaults, &mut problems, &mut ignored)
        }
    };
    let applications = parse_list(
        value,
        "applications",
        &templates.application,
        &mut problems,
        &mut ignored,
        |index, item| Place::Application {
            index,
            name: label(item, "name"),
        },
    );
    let packages = parse_list(
        value,
        "packages",
        &templates.package,
        &mut problems,
        &mut ignored,
        |index, item| Place::Package {
            index,
            id: label(item, "id"),
        },
    );
    ignored.finish();
    let backup = match (timestamp, webvm_state, settings, applications, packages) {
        (
            Some(timestamp),
            Some(webvm_state),
            Some(settings),
            Some(applications),
            Some(packages),
        ) => {
            let count = |part: &str| {
                value
                    .get(part)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            };
            let complete =
                applications.len() == count("applications") && packages.len() == count("packages");
            let (application_indices, applications) = applications.into_iter().unzip();
            let (package_indices, packages) = packages.into_iter().unzip();
            Some(Partial {
                backup: ApplicationServerBackup {
                    version: CURRENT_FORMAT_VERSION.to_owned(),
                    timestamp,
                    webvm_state,
                    applications,
                    packages,
                    settings,
                },
                indices: Indices {
                    applications: application_indices,
                    packages: package_indices,
                    complete,
                },
            })
        }
        _ => None,
    };
    (backup, problems)
}

/// Valid records of each list's type as JSON, whose values stand in for a bad required
/// field so that reading a record can go on to its next problem.
struct Templates {
    application: Value,
    package: Value,
}

impl Templates {
    fn new() -> Self {
        let application = AppName::parse("template").ok().map(|name| {
            let deployment = DeploymentConfig {
                deployment_path: DeploymentConfig::default_path(&name),
                ..DeploymentConfig::default()
            };
            Application::new(
                uuid::Uuid::nil(),
                name,
                deployment,
                ExecutionConfig::default(),
                DateTime::UNIX_EPOCH,
            )
        });
        let package = PackageId::parse("template")
            .ok()
            .map(|id| RuntimePackage::new(id, "template", RuntimeCategory::Tool, "1"));
        Templates {
            application: serde_json::to_value(application).unwrap_or(Value::Null),
            package: serde_json::to_value(package).unwrap_or(Value::Null),
        }
    }
}

/// The string `field` of a record, shortened, to name it in messages.
fn label(item: &Value, field: &str) -> Option<String> {
    item.get(field).and_then(Value::as_str).map(shorten)
}

/// Unknown fields seen while parsing, as warnings (at most [`MAX_IGNORED_WARNINGS`]).
struct Ignored<'w> {
    warnings: &'w mut Vec<Finding>,
    count: usize,
}

impl<'w> Ignored<'w> {
    fn new(warnings: &'w mut Vec<Finding>) -> Self {
        Ignored { warnings, count: 0 }
    }

    fn note(&mut self, place: Place, field: &str) {
        self.count += 1;
        if self.count <= MAX_IGNORED_WARNINGS {
            self.warnings.push(Finding::new(
                place,
                shorten(field),
                "not a field this program knows: ignored",
            ));
        }
    }

    fn finish(self) {
        if self.count > MAX_IGNORED_WARNINGS {
            self.warnings.push(Finding::backup(
                "",
                format!(
                    "{} more unknown fields ignored",
                    self.count - MAX_IGNORED_WARNINGS
                ),
            ));
        }
    }
}

fn parse_part<T: DeserializeOwned>(
    value: &Value,
    part: &str,
    template: &Value,
    problems: &mut Vec<Finding>,
    ignored: &mut Ignored<'_>,
) -> Option<T> {
    let Some(item) = value.get(part) else {
        problems.push(Finding::backup(part, "is missing"));
        return None;
    };
    let parsed = parse_record::<T>(item, template);
    for field in &parsed.ignored {
        ignored.note(Place::Backup, &join(part, field));
    }
    for (field, message) in parsed.errors {
        problems.push(Finding::backup(join(part, &field), message));
    }
    parsed.value
}

/// Parses every record of the list `part`, each with the place `place_of` names; returns
/// the records that parsed, each with its index in the list.
fn parse_list<T: DeserializeOwned>(
    value: &Value,
    part: &str,
    template: &Value,
    problems: &mut Vec<Finding>,
    ignored: &mut Ignored<'_>,
    place_of: impl Fn(usize, &Value) -> Place,
) -> Option<Vec<(usize, T)>> {
    let items = match value.get(part) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(Finding::backup(
                part,
                format!("must be a list, not {}", kind_of(other)),
            ));
            return None;
        }
        None => {
            problems.push(Finding::backup(part, "is missing"));
            return None;
        }
    };
    let mut records = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let parsed = parse_record::<T>(item, template);
        let place = || place_of(index, item);
        for field in &parsed.ignored {
            ignored.note(place(), field);
        }
        for (field, message) in parsed.errors {
            problems.push(Finding::new(place(), field, message));
        }
        if let Some(record) = parsed.value {
            records.push((index, record));
        }
    }
    Some(records)
}

/// What reading one record found.
struct Parsed<T> {
    /// The record, when it had no error.
    value: Option<T>,
    /// (field path, message) of each error.
    errors: Vec<(String, String)>,
    /// The paths of the fields `T` does not know.
    ignored: Vec<String>,
}

/// Reads one record, naming the field of each error (`serde_path_to_error`) and each field
/// the model doesn't know (`serde_ignored`). serde stops at the first error, so after each
/// one the bad value is replaced by `template`'s at the same place (a valid record of the
/// type), or taken out if the template has none, and the record is read again, up to
/// [`MAX_PROBLEMS_PER_RECORD`] times: a record with three bad fields lists three.
fn parse_record<T: DeserializeOwned>(item: &Value, template: &Value) -> Parsed<T> {
    let mut item = item.clone();
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let mut ignored = Vec::new();
        let result = {
            let mut note = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
            let deserializer = serde_ignored::Deserializer::new(&item, &mut note);
            serde_path_to_error::deserialize::<_, T>(deserializer)
        };
        let error = match result {
            Ok(value) => {
                return Parsed {
                    value: errors.is_empty().then_some(value),
                    errors,
                    ignored,
                }
            }
            Err(error) => error,
        };
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = shorten_message(&error.inner().to_string());
        let missing = missing_field(&message).map(|field| join(&path, field));
        if missing
            .as_ref()
            .is_some_and(|field| removed.contains(field))
        {
            // A required field taken out after its own error: that error said it.
            break;
        }
        let mut segments: Vec<Step> = error.path().iter().map(Step::from).collect();
        if let Some(field) = missing_field(&message) {
            segments.push(Step::Key(field.to_owned()));
        }
        let repaired = replace_field(&mut item, &segments, template);
        errors.push((missing.unwrap_or(path.clone()), message));
        if !repaired || errors.len() >= MAX_PROBLEMS_PER_RECORD {
            break;
        }
        removed.push(segments_path(&segments));
    }
    Parsed {
        value: None,
        errors,
        ignored: Vec::new(),
    }
}

/// One step of a field's path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    Other,
}

impl From<&serde_path_to_error::Segment> for Step {
    fn from(segment: &serde_path_to_error::Segment) -> Self {
        use serde_path_to_error::Segment;
        match segment {
            Segment::Map { key } => Step::Key(key.clone()),
            Segment::Seq { index } => Step::Index(*index),
            _ => Step::Other,
        }
    }
}

fn segments_path(steps: &[Step]) -> String {
    steps.iter().fold(String::new(), |path, step| match step {
        Step::Key(key) => join(&path, key),
        Step::Index(index) => format!("{path}[{index}]"),
        Step::Other => join(&path, "?"),
    })
}

fn step_into<'v>(value: &'v mut Value, step: &Step) -> Option<&'v mut Value> {
    match step {
        Step::Key(key) => value.get_mut(key.as_str()),
        Step::Index(index) => value.get_mut(*index),
        Step::Other => None,
    }
}

/// Puts `template`'s value at `steps` into `item` (a missing field too), or takes the
/// field out when the template has none there and it is an object key (a list element is
/// left: taking it out would renumber the ones after it). False when nothing changed.
fn replace_field(item: &mut Value, steps: &[Step], template: &Value) -> bool {
    let Some((Step::Key(key), parents)) = steps.split_last() else {
        return false;
    };
    let stand_in = steps
        .iter()
        .try_fold(template, |at, step| match step {
            Step::Key(key) => at.get(key.as_str()),
            Step::Index(index) => at.get(*index),
            Step::Other => None,
        })
        .cloned();
    let mut at = item;
    for step in parents {
        match step_into(at, step) {
            Some(next) => at = next,
            None => return false,
        }
    }
    let Some(object) = at.as_object_mut() else {
        return false;
    };
    match stand_in {
        Some(stand_in) if object.get(key.as_str()) != Some(&stand_in) => {
            object.insert(key.clone(), stand_in);
            true
        }
        Some(_) => false,
        None => object.remove(key.as_str()).is_some(),
    }
}

/// The field name of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

fn join(parent: &str, field: &str) -> String {
    match (parent.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => parent.to_owned(),
        (false, false) if field.starts_with('[') => format!("{parent}{field}"),
        (false, false) => format!("{parent}.{field}"),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// At most 300 characters of a message (serde's and the model's quote the bad value).
fn shorten_message(message: &str) -> String {
    const LIMIT: usize = 300;
    match message.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

/// At most 60 characters of a text from the backup, so a hostile value can't flood a
/// message.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Every problem and warning of a parsed backup: each application's rules (a conflict
/// between two is reported once, on the later one), the system, package and settings
/// rules, and the consistency of ids, the package list and the VM state.
pub fn validate_backup(
    backup: &ApplicationServerBackup,
    catalog: &[RuntimePackage],
) -> (Vec<Finding>, Vec<Finding>) {
    let indices = Indices {
        applications: (0..backup.applications.len()).collect(),
        packages: (0..backup.packages.len()).collect(),
        complete: true,
    };
    validate_parsed(backup, &indices, catalog)
}

/// [`validate_backup`] of the records that parsed, each named by its index in the file.
fn validate_parsed(
    backup: &ApplicationServerBackup,
    indices: &Indices,
    catalog: &[RuntimePackage],
) -> (Vec<Finding>, Vec<Finding>) {
    let rules = ValidationRules::new(
        backup.packages.iter().chain(catalog),
        &backup.applications,
        &backup.webvm_state.system_resources,
        &backup.settings,
    )
    .in_order();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut first_index: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (application, &index) in backup.applications.iter().zip(&indices.applications) {
        let place = || Place::Application {
            index,
            name: Some(application.name.to_string()),
        };
        if let Some(first) = first_index.get(&application.id) {
            problems.push(Finding::new(
                place(),
                "id",
                format!("{} is also the id of applications[{first}]", application.id),
            ));
        } else {
            first_index.insert(application.id, index);
        }
        for (group, result) in rules.check_application(application).groups() {
            for error in &result.errors {
                problems.push(Finding::new(place(), group, error.clone()));
            }
            for warning in &result.warnings {
                warnings.push(Finding::new(place(), group, warning.clone()));
            }
        }
        if needs_files(application) {
            warnings.push(Finding::new(
                place(),
                "deployment.sourceConfig.files",
                "the backup holds none of its files: it is imported as a draft, to be deployed again with its files",
            ));
        }
    }
    for (part, result) in [
        (
            "webvmState.systemResources",
            rules.validate_system_resources(),
        ),
        ("packages", rules.validate_installed_packages()),
        ("settings", rules.validate_settings()),
    ] {
        problems.extend(
            result
                .errors
                .iter()
                .map(|error| Finding::backup(part, error.clone())),
        );
        warnings.extend(
            result
                .warnings
                .iter()
                .map(|warning| Finding::backup(part, warning.clone())),
        );
    }
    let mut package_ids = BTreeSet::new();
    for (package, &index) in backup.packages.iter().zip(&indices.packages) {
        if !package_ids.insert(&package.id) {
            problems.push(Finding::new(
                Place::Package {
                    index,
                    id: Some(package.id.to_string()),
                },
                "id",
                format!("package {} appears twice", package.id),
            ));
        }
    }
    if !indices.complete {
        return (problems, warnings);
    }
    let known: HashSet<uuid::Uuid> = first_index.keys().copied().collect();
    for runtime in &backup.webvm_state.installed_runtimes {
        let recorded = backup
            .packages
            .iter()
            .any(|package| package.id == *runtime && package.status == PackageStatus::Installed);
        if !recorded {
            problems.push(Finding::backup(
                "webvmState.installedRuntimes",
                format!("lists {runtime} as installed but the backup has no installed package {runtime}"),
            ));
        }
    }
    for running in &backup.webvm_state.running_apps {
        if !known.contains(running) {
            problems.push(Finding::backup(
                "webvmState.runningApps",
                format!("lists unknown running application {running}"),
            ));
        }
    }
    (problems, warnings)
}

/// An application whose files only the user has: an upload or a local folder, with no
/// file list in the backup (`File` objects can't be written to JSON).
pub fn needs_files(application: &Application) -> bool {
    let source = &application.deployment;
    matches!(
        source.source_type,
        DeploymentSource::Upload | DeploymentSource::LocalSync
    ) && source
        .source_config
        .files
        .as_ref()
        .is_none_or(|files| files.is_empty())
}

#[cfg(test)]
mod tests;
