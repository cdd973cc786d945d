//! A bound on the bytes the tar reader consumes between two entries.
//!
//! The `tar` crate reads a GNU long name (`L`), long link (`K`) or PAX extended header (`x`)
//! whole into memory before it returns the entry they describe, whatever size the archive
//! declares for it, and it collects old GNU sparse extension headers the same way. A
//! gzip-compressed layer of a few megabytes can declare a long name of many gigabytes, so
//! without a bound a single layer could exhaust memory. The bytes read while the reader looks
//! for the next entry are metadata only (entry data is read or drained by the unpacker), so
//! they are counted, and reading fails once they pass [`MAX_HEADER_BYTES`].

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Most bytes of headers, extension records and padding read to reach one entry. Legitimate
/// metadata stays far below it: names are at most a few KiB (`PATH_MAX` is 4096), and Linux
/// caps each xattr value and the list of xattr names at 64 KiB.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Why reading stopped: the metadata of one entry passed [`MAX_HEADER_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the headers of one entry are larger than {MAX_HEADER_BYTES} bytes")]
pub struct HeadersTooLarge;

/// The counter shared by the unpack loop, which arms it while the tar reader looks for the
/// next entry, and [`Metered`], which counts what is read meanwhile.
#[derive(Debug, Clone, Default)]
pub struct HeaderBudget {
    /// Bytes read since [`HeaderBudget::arm`]; `None` while disarmed.
    used: Rc<Cell<Option<u64>>>,
}

impl HeaderBudget {
    pub fn arm(&self) {
        self.used.set(Some(0));
    }

    pub fn disarm(&self) {
        self.used.set(None);
    }

    /// Counts `count` bytes read, failing once the armed budget is exceeded.
    fn spend(&self, count: usize) -> io::Result<()> {
        let Some(used) = self.used.get() else {
            return Ok(());
        };
        let used = used.saturating_add(count as u64);
        self.used.set(Some(used));
        match used > MAX_HEADER_BYTES {
            true => Err(io::Error::new(io::ErrorKind::InvalidData, HeadersTooLarge)),
            false => Ok(()),
        }
    }
}

/// A reader that charges every byte it reads to a [`HeaderBudget`].
pub struct Metered<R> {
    pub inner: R,
    pub budget: HeaderBudget,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.budget.spend(count)?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(budget: &HeaderBudget, size: usize) -> io::Result<u64> {
        let mut reader = Metered {
            inner: io::repeat(b'a').take(size as u64),
            budget: budget.clone(),
        };
        io::copy(&mut reader, &mut io::sink())
    }

    #[test]
    fn budget_disarmed_counts_nothing() {
        let budget = HeaderBudget::default();
        let size = MAX_HEADER_BYTES as usize + 1;
        assert_eq!(read_all(&budget, size).unwrap(), size as u64);
    }

    #[test]
    fn budget_armed_allows_the_maximum() {
        let budget = HeaderBudget::default();
        budget.arm();
        let size = MAX_HEADER_BYTES as usize;
        assert_eq!(read_all(&budget, size).unwrap(), size as u64);
    }

    #[test]
    fn budget_armed_fails_past_the_maximum() {
        let budget = HeaderBudget::default();
        budget.arm();
        let error = read_all(&budget, MAX_HEADER_BYTES as usize + 1).unwrap_err();
        assert!(error.get_ref().unwrap().is::<HeadersTooLarge>());
    }

    #[test]
    fn budget_rearmed_starts_from_zero() {
        let budget = HeaderBudget::default();
        budget.arm();
        read_all(&budget, MAX_HEADER_BYTES as usize).unwrap();
        budget.arm();
        assert!(read_all(&budget, 1).is_ok());
    }
}
