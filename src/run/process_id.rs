//! A process identified by its PID and its start time, so that a PID the kernel has since
//! given to another process is never signalled by mistake.

use std::io;
use std::os::fd::OwnedFd;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot at which the process started.
    pub start_time: u64,
}

impl ProcessId {
    /// Identifies the process that has `pid` now.
    pub fn of(pid: i32) -> io::Result<ProcessId> {
        let (_, start_time) = read_stat(pid)?;
        Ok(ProcessId { pid, start_time })
    }

    /// Returns whether the process still runs: the PID exists, belongs to it, and is not a zombie.
    pub fn is_alive(&self) -> bool {
        matches!(read_stat(self.pid), Ok((state, start)) if start == self.start_time && state != 'Z')
    }

    /// Opens a pidfd for the process, or returns `None` if it is gone. Opening first and checking the
    /// start time after makes the pidfd safe to signal: if the check passes, the pidfd
    /// refers to this process, which pidfd_send_signal(2) then reaches or reports as exited.
    pub fn open(&self) -> io::Result<Option<OwnedFd>> {
        let Some(pid) = Pid::from_raw(self.pid) else {
            return Ok(None);
        };
        let fd = match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        };
        Ok(self.is_alive().then_some(fd))
    }
}

fn read_stat(pid: i32) -> io::Result<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

/// Parses the state and start time from a `/proc/PID/stat` line. The command name in field 2 is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 (state) is fields[0], so field 22 (starttime) is fields[19].
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_names() {
        let tail = "S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 200";
        let cases = [
            (format!("42 (sh) {tail}"), Some(('S', 123_456))),
            (format!("42 (a (b) c) {tail}"), Some(('S', 123_456))),
            ("42 (sh) S 1 2".to_owned(), None),
            ("garbage".to_owned(), None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_stat(&line), expected, "{line}");
        }
    }

    #[test]
    fn own_process_is_alive() {
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
        assert!(me.open().unwrap().is_some());
        assert!(reused.open().unwrap().is_none());
    }
}
