//! `--env-file FILE`: environment variables, one per line, as Docker reads them: `KEY=VALUE`
//! taken as it is (no quotes are removed), a bare `KEY` copied from `run`'s environment,
//! blank lines and lines starting with `#` skipped.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the env file: invalid variable name {name:?}: it must not be empty or contain whitespace")]
pub struct InvalidEnvFile {
    pub line: usize,
    pub name: String,
}

/// Parses the `KEY=VALUE` entries of `text`. `lookup` supplies the values of bare names,
/// and a name it does not know is dropped.
pub fn parse(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, InvalidEnvFile> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (line.trim_end(), None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(InvalidEnvFile {
                line: index + 1,
                name: name.to_owned(),
            });
        }
        match value {
            Some(value) => entries.push(format!("{name}={value}")),
            None => entries.extend(lookup(name).map(|value| format!("{name}={value}"))),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/me".to_owned())
    }

    #[test]
    fn env_file_parsing_table() {
        let cases: &[(&str, &[&str])] = &[
            ("A=1\nB=two words\n", &["A=1", "B=two words"]),
            ("# comment\n\n  C=3\n", &["C=3"]),
            ("Q=\"quoted\"\n", &["Q=\"quoted\""]),
            ("EMPTY=\n", &["EMPTY="]),
            ("HOME_DIR\nUNSET\n", &["HOME_DIR=/home/me"]),
            ("EQ=a=b\n", &["EQ=a=b"]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text, lookup).unwrap(), *expected, "{text:?}");
        }
    }

    #[test]
    fn whitespace_in_name_is_rejected() {
        let error = parse("OK=1\nBAD NAME=2\n", lookup).unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(error.name, "BAD NAME");
    }
}
