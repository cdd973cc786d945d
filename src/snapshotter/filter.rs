//! containerd's filter syntax, as List (`Walk`) receives it.
//!
//! A filter is a comma-separated list of selectors `<fieldpath><op><value>`, all of which must
//! match; of several filters, any may match. Field paths are dot-separated fields, each a
//! word or a double-quoted string (`labels."containerd.io/snapshot.ref"`). Operators are
//! `==`, `!=` and `~=` (a regular expression); a field path alone tests presence. Values are
//! a run of characters up to a comma or a space, or a quoted string; `~=` also accepts `/…/`
//! and `|…|` quoting. This follows the grammar documented in containerd's `filters` package
//! (1.6). containerd itself sends `labels."containerd.io/snapshot.ref"==<chain ID>,parent==".."`
//! when Prepare returns AlreadyExists, and no filter when collecting garbage.

use regex::Regex;

use super::metadata::SnapshotInfo;

#[derive(Debug, thiserror::Error)]
#[error("invalid filter {filter:?} at byte {position}: {reason}")]
pub struct InvalidFilter {
    pub filter: String,
    pub position: usize,
    pub reason: String,
}

/// Parsed filters: matches when any alternative matches.
#[derive(Debug)]
pub struct Filter {
    alternatives: Vec<Vec<Selector>>,
}

#[derive(Debug)]
struct Selector {
    path: Vec<String>,
    operator: Operator,
}

#[derive(Debug)]
enum Operator {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

impl Filter {
    /// Parses each filter; no filters, or only empty ones, match everything.
    pub fn parse_all(filters: &[String]) -> Result<Filter, InvalidFilter> {
        let mut alternatives = Vec::new();
        for filter in filters {
            if filter.is_empty() {
                return Ok(Filter {
                    alternatives: Vec::new(),
                });
            }
            alternatives.push(Parser::new(filter).selectors()?);
        }
        Ok(Filter { alternatives })
    }

    pub fn matches(&self, info: &SnapshotInfo) -> bool {
        if self.alternatives.is_empty() {
            return true;
        }
        self.alternatives
            .iter()
            .any(|selectors| selectors.iter().all(|selector| selector.matches(info)))
    }
}

impl Selector {
    fn matches(&self, info: &SnapshotInfo) -> bool {
        let value = field(info, &self.path);
        match &self.operator {
            Operator::Present => value.is_some(),
            Operator::Equal(expected) => value.as_deref() == Some(expected.as_str()),
            Operator::NotEqual(expected) => value.as_deref().unwrap_or("") != expected,
            Operator::Matches(regex) => regex.is_match(value.as_deref().unwrap_or("")),
        }
    }
}

/// Looks up a field that containerd's snapshot filters address (its `adaptSnapshot`). A label
/// key may contain dots, so the rest of a `labels.` path is joined back together.
fn field(info: &SnapshotInfo, path: &[String]) -> Option<String> {
    match path {
        [name] if name == "kind" => Some(info.kind.to_string()),
        [name] if name == "name" => Some(info.name.clone()),
        [name] if name == "parent" => Some(info.parent.clone().unwrap_or_default()),
        [labels, key @ ..] if labels == "labels" && !key.is_empty() => {
            info.labels.get(&key.join(".")).cloned()
        }
        _ => None,
    }
}

struct Parser<'a> {
    input: &'a str,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        Parser { input, position: 0 }
    }

    fn selectors(&mut self) -> Result<Vec<Selector>, InvalidFilter> {
        let mut selectors = vec![self.selector()?];
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return Ok(selectors),
                Some(',') => {
                    self.position += 1;
                    selectors.push(self.selector()?);
                }
                Some(other) => return Err(self.error(format!("unexpected {other:?}"))),
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, InvalidFilter> {
        let path = self.field_path()?;
        self.skip_spaces();
        let rest = &self.input[self.position..];
        let operator = if rest.is_empty() || rest.starts_with(',') {
            return Ok(Selector {
                path,
                operator: Operator::Present,
            });
        } else if let Some(op) = ["==", "!=", "~="]
            .into_iter()
            .find(|op| rest.starts_with(op))
        {
            self.position += 2;
            op
        } else {
            return Err(self.error("expected an operator (==, != or ~=)".to_owned()));
        };
        let regex = operator == "~=";
        let value = self.value(regex)?;
        let operator = match operator {
            "==" => Operator::Equal(value),
            "!=" => Operator::NotEqual(value),
            _ => Operator::Matches(
                Regex::new(&value).map_err(|error| self.error(error.to_string()))?,
            ),
        };
        Ok(Selector { path, operator })
    }

    fn field_path(&mut self) -> Result<Vec<String>, InvalidFilter> {
        let mut path = vec![self.field()?];
        while self.peek() == Some('.') {
            self.position += 1;
            path.push(self.field()?);
        }
        Ok(path)
    }

    fn field(&mut self) -> Result<String, InvalidFilter> {
        self.skip_spaces();
        match self.peek() {
            Some('"') => self.quoted('"'),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.position;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.position += 1;
                }
                Ok(self.input[start..self.position].to_owned())
            }
            _ => Err(self.error("expected a field name or a quoted string".to_owned())),
        }
    }

    fn value(&mut self, regex: bool) -> Result<String, InvalidFilter> {
        self.skip_spaces();
        match self.peek() {
            Some('"') => self.quoted('"'),
            Some(quote @ ('/' | '|')) if regex => self.quoted(quote),
            Some('/' | '|') => Err(self.error("only ~= accepts /…/ or |…| quoting".to_owned())),
            Some(c) if c != ',' && !c.is_whitespace() => {
                let start = self.position;
                while self.peek().is_some_and(|c| c != ',' && !c.is_whitespace()) {
                    self.position += self.peek().map_or(0, char::len_utf8);
                }
                Ok(self.input[start..self.position].to_owned())
            }
            _ => Err(self.error("expected a value".to_owned())),
        }
    }

    /// Reads a string between `quote`s, with Go's backslash escapes.
    fn quoted(&mut self, quote: char) -> Result<String, InvalidFilter> {
        self.position += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated quoted string".to_owned()));
            };
            self.position += c.len_utf8();
            match c {
                c if c == quote => return Ok(text),
                '\\' => text.push(self.escape(quote)?),
                c => text.push(c),
            }
        }
    }

    fn escape(&mut self, quote: char) -> Result<char, InvalidFilter> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated escape".to_owned()));
        };
        self.position += c.len_utf8();
        let escaped = match c {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            c if c == quote => c,
            _ => return Err(self.error(format!("unknown escape \\{c}"))),
        };
        Ok(escaped)
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.input[self.position..].chars().next()
    }

    fn error(&self, reason: String) -> InvalidFilter {
        InvalidFilter {
            filter: self.input.to_owned(),
            position: self.position,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::*;
    use crate::snapshotter::Kind;

    fn info() -> SnapshotInfo {
        SnapshotInfo {
            name: "default/4/sha256:ab".to_owned(),
            kind: Kind::Committed,
            parent: Some("default/2/sha256:cd".to_owned()),
            labels: BTreeMap::from([
                (
                    "containerd.io/snapshot.ref".to_owned(),
                    "sha256:ab".to_owned(),
                ),
                ("empty".to_owned(), String::new()),
            ]),
            created: SystemTime::UNIX_EPOCH,
            updated: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn filter_matches_table() {
        let cases: &[(&[&str], bool)] = &[
            (&[], true),
            (&[""], true),
            (&["kind==committed"], true),
            (&["kind==active"], false),
            (&["kind!=active"], true),
            (&["name==default/4/sha256:ab"], true),
            (
                &[
                    r#"labels."containerd.io/snapshot.ref"==sha256:ab,parent=="default/2/sha256:cd""#,
                ],
                true,
            ),
            (
                &[r#"labels."containerd.io/snapshot.ref"==sha256:ab,parent=="""#],
                false,
            ),
            (&[r#"labels."containerd.io/snapshot.ref""#], true),
            (&["labels.missing"], false),
            (&["labels.empty"], true),
            (&["labels.missing!=x"], true),
            (&["kind==active", "kind==committed"], true),
            (&["kind==active", "name==x"], false),
            (&["name~=/^default\\/4\\//"], true),
            (&["name~=|sha256:[0-9]+|"], false),
            (&[" kind == committed , parent~=cd$ "], true),
            (&[r#"name=="default/4/sha256:ab""#], true),
        ];
        for (filters, expected) in cases {
            let owned: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
            let filter = Filter::parse_all(&owned).unwrap();
            assert_eq!(filter.matches(&info()), *expected, "{filters:?}");
        }
    }

    #[test]
    fn filter_rejects_malformed() {
        let cases = [
            "kind=committed",
            "kind==",
            "kind==committed,",
            "==x",
            "name==/x/",
            r#"labels."unterminated==x"#,
            "name~=(",
            r#"name=="\q""#,
        ];
        for case in cases {
            let error = Filter::parse_all(&[case.to_owned()]).err();
            assert!(error.is_some(), "{case} parsed");
        }
    }
}
