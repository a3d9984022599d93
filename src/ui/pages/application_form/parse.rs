//! Parsing the form's text fields: `NAME=value` lines, whole numbers and ports, each
//! problem naming the field (and the line) it concerns.

use std::collections::BTreeMap;

use super::text::Field;
use crate::model::Port;

/// `NAME=value` lines into a map; blank lines are skipped, a line without `=` or with an
/// empty name is named with its line number, a name given twice too.
pub fn parse_pairs(label: &str, text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut map = BTreeMap::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                let key = key.trim().to_owned();
                if map.insert(key.clone(), value.to_owned()).is_some() {
                    errors.push(format!(
                        "{label}, line {}: '{key}' is given twice",
                        index + 1
                    ));
                }
            }
            _ => errors.push(format!(
                "{label}, line {}: '{}' is not NAME=value",
                index + 1,
                line.trim()
            )),
        }
    }
    (map, errors)
}

/// `text` without the `NAME=value` lines of `name` (the other lines as they were).
pub fn without_variable(text: &str, name: &str) -> String {
    text.lines()
        .filter(|line| {
            line.split_once('=')
                .is_none_or(|(key, _)| key.trim() != name)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn parse_number<T: std::str::FromStr>(
    report: &mut impl FnMut(Field, String),
    field: Field,
    label: &str,
    text: &str,
) -> Option<T> {
    let text = text.trim();
    match text.parse::<T>() {
        Ok(value) => Some(value),
        Err(_) => {
            report(
                field,
                format!("{label} '{text}' is not a whole number of 0 or more"),
            );
            None
        }
    }
}

pub fn optional_number<T: std::str::FromStr>(
    report: &mut impl FnMut(Field, String),
    field: Field,
    label: &str,
    text: &str,
    previous: Option<T>,
) -> Option<T> {
    if text.trim().is_empty() {
        None
    } else {
        parse_number(report, field, label, text).or(previous)
    }
}

pub fn parse_port(
    report: &mut impl FnMut(Field, String),
    field: Field,
    label: &str,
    text: &str,
) -> Option<Port> {
    match text.parse::<i64>() {
        Ok(number) => match Port::parse(number) {
            Ok(port) => Some(port),
            Err(error) => {
                report(field, format!("{label}: {error}"));
                None
            }
        },
        Err(_) => {
            report(field, format!("{label} '{text}' is not a number"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_variable_table() {
        let cases = [
            ("A=1\nAPI_TOKEN=x\nB=2", "API_TOKEN", "A=1\nB=2"),
            ("API_TOKEN = x", "API_TOKEN", ""),
            ("A=1\n\nB=2", "API_TOKEN", "A=1\n\nB=2"),
            (
                "API_TOKEN_2=y\nnot a pair",
                "API_TOKEN",
                "API_TOKEN_2=y\nnot a pair",
            ),
        ];
        for (text, name, expected) in cases {
            assert_eq!(without_variable(text, name), expected, "{text}");
        }
    }

    #[test]
    fn pairs_parse_with_line_numbers() {
        let (map, errors) = parse_pairs("environment", "A=1\n\nB = two=2\nA=3\n=x");
        assert_eq!(map.get("B").map(String::as_str), Some(" two=2"));
        assert_eq!(map.get("A").map(String::as_str), Some("3"));
        assert_eq!(
            errors,
            [
                "environment, line 4: 'A' is given twice",
                "environment, line 5: '=x' is not NAME=value"
            ]
        );
    }
}
