//! The PAX extended header records of one entry (POSIX.1-2001 `pax`, "pax Extended Header"),
//! read once and kept in archive order: GNU sparse format 0.0 repeats its keys, so a map
//! would lose records.

use std::io::{self, Read};

use tar::Entry;

/// The records of an entry's `x` header, in order; empty when it has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaxRecords {
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PaxRecords {
    pub fn read<R: Read>(entry: &mut Entry<'_, R>) -> io::Result<PaxRecords> {
        let mut records = Vec::new();
        if let Some(extensions) = entry.pax_extensions()? {
            for extension in extensions {
                let extension = extension?;
                records.push((
                    extension.key_bytes().to_vec(),
                    extension.value_bytes().to_vec(),
                ));
            }
        }
        Ok(PaxRecords { records })
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> PaxRecords {
        let records = pairs
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect();
        PaxRecords { records }
    }

    /// Returns the value of the last record with `key`: a later record overrides an earlier one.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.records
            .iter()
            .rev()
            .find(|(name, _)| name == key.as_bytes())
            .map(|(_, value)| value.as_slice())
    }

    /// Returns the value of the last record with `key`, as text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.records
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
    }
}
