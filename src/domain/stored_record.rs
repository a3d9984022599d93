//! The format versions of the records this browser keeps in IndexedDB (the application, the
//! package and the VM record): each record carries `schemaVersion`, and a stored record is
//! read by upgrading it one version at a time to the current format.
//!
//! A record written before versions existed (no `schemaVersion`) counts as
//! [`RecordFormat::unversioned`] when the format says what that was, and is unreadable
//! otherwise. A record from a newer program is refused, not guessed at: writing it back would
//! lose what this program doesn't know.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the {what} is unreadable: {reason}")]
    Unreadable { what: &'static str, reason: String },
    #[error(
        "the {what} was written by a newer version of this program (format {found}, this one reads up to {reads}); reload to get the newer version"
    )]
    Newer {
        what: &'static str,
        found: u32,
        reads: u32,
    },
}

/// One step of a record's upgrade: changes the JSON object of format `from` into the next
/// format (the version field is set by [`read_record`]); an error says why it can't.
pub type UpgradeStep = fn(&mut Map<String, Value>, u32) -> Result<(), String>;

/// A record's format: what it is called, its current version and how older ones upgrade.
#[derive(Debug, Clone, Copy)]
pub struct RecordFormat {
    /// What the record is, for people: `application record`.
    pub what: &'static str,
    /// The version this program writes.
    pub current: u32,
    /// The version of a record stored without `schemaVersion`, if there was such a format.
    pub unversioned: Option<u32>,
    /// Upgrades format `from` to `from + 1`.
    pub upgrade: UpgradeStep,
}

/// The field every record carries.
pub const VERSION_FIELD: &str = "schemaVersion";

impl RecordFormat {
    fn unreadable(&self, reason: impl Into<String>) -> RecordError {
        RecordError::Unreadable {
            what: self.what,
            reason: reason.into(),
        }
    }

    /// Upgrades `value` in place from its stored format to the current one.
    pub fn upgrade_to_current(&self, value: &mut Value) -> Result<(), RecordError> {
        let object = value
            .as_object_mut()
            .ok_or_else(|| self.unreadable("it is not a JSON object"))?;
        let mut version = match object.get(VERSION_FIELD) {
            Some(found) => found
                .as_u64()
                .map(|found| u32::try_from(found).unwrap_or(u32::MAX))
                .ok_or_else(|| self.unreadable("its schemaVersion is not a number"))?,
            None => self
                .unversioned
                .ok_or_else(|| self.unreadable("it has no schemaVersion"))?,
        };
        if version > self.current {
            return Err(RecordError::Newer {
                what: self.what,
                found: version,
                reads: self.current,
            });
        }
        while version < self.current {
            (self.upgrade)(object, version)
                .map_err(|reason| self.unreadable(format!("format {version}: {reason}")))?;
            version += 1;
            object.insert(VERSION_FIELD.to_owned(), version.into());
        }
        Ok(())
    }

    /// Reads a stored record of this format (see the module docs).
    pub fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, RecordError> {
        let mut value: Value =
            serde_json::from_str(text).map_err(|error| self.unreadable(error.to_string()))?;
        self.upgrade_to_current(&mut value)?;
        serde_json::from_value(value).map_err(|error| self.unreadable(error.to_string()))
    }
}

/// The upgrade of a format that has no older version: every `from` is refused.
pub fn no_upgrade(_: &mut Map<String, Value>, from: u32) -> Result<(), String> {
    Err(format!("format {from} has no upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        schema_version: u32,
        #[serde(default)]
        added_in_3: Option<String>,
        name: String,
    }

    fn upgrade(object: &mut Map<String, Value>, from: u32) -> Result<(), String> {
        match from {
            1 => Ok(()),
            2 => {
                object.insert("addedIn3".into(), "default".into());
                Ok(())
            }
            other => Err(format!("format {other} has no upgrade")),
        }
    }

    const FORMAT: RecordFormat = RecordFormat {
        what: "sample record",
        current: 3,
        unversioned: Some(1),
        upgrade,
    };

    #[test]
    fn records_are_upgraded_step_by_step_or_refused() {
        let upgraded = |text: &str| FORMAT.read::<Sample>(text);
        let three = |added: &str| Sample {
            schema_version: 3,
            added_in_3: Some(added.into()),
            name: "a".into(),
        };
        let cases: [(&str, Result<Sample, &str>); 8] = [
            (r#"{"name":"a"}"#, Ok(three("default"))),
            (r#"{"schemaVersion":1,"name":"a"}"#, Ok(three("default"))),
            (r#"{"schemaVersion":2,"name":"a"}"#, Ok(three("default"))),
            (
                r#"{"schemaVersion":3,"name":"a","addedIn3":"kept"}"#,
                Ok(three("kept")),
            ),
            (
                r#"{"schemaVersion":0,"name":"a"}"#,
                Err("format 0 has no upgrade"),
            ),
            (
                r#"{"schemaVersion":4,"name":"a"}"#,
                Err("newer version of this program (format 4, this one reads up to 3)"),
            ),
            (
                r#"{"schemaVersion":"2","name":"a"}"#,
                Err("schemaVersion is not a number"),
            ),
            ("[1]", Err("not a JSON object")),
        ];
        for (text, expected) in cases {
            match (upgraded(text), expected) {
                (Ok(found), Ok(expected)) => assert_eq!(found, expected, "{text}"),
                (Err(error), Err(expected)) => {
                    let message = error.to_string();
                    assert!(message.contains(expected), "{text}: {message}");
                    assert!(message.contains("sample record"), "{text}: {message}");
                }
                (found, expected) => panic!("{text}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_format_without_an_unversioned_past_refuses_a_record_without_a_version() {
        let strict = RecordFormat {
            unversioned: None,
            ..FORMAT
        };
        let error = strict
            .read::<Sample>(r#"{"name":"a"}"#)
            .expect_err("no version");
        assert!(
            error.to_string().contains("it has no schemaVersion"),
            "{error}"
        );
        assert!(no_upgrade(&mut Map::new(), 1).is_err());
    }
}
