//! The report of a failure in the container's set-up. PID 1 (or the helper that forks it)
//! writes the exit code and message to a close-on-exec pipe, which the shim reads, and
//! exits. If the
//! command starts, exec(2) closes the pipe with nothing written.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use super::Error;

/// Writes `error` to `pipe` as `CODE\nMESSAGE`.
pub fn send(pipe: &OwnedFd, error: &Error) {
    let report = format!("{}\n{error}", error.exit_code());
    if let Ok(clone) = pipe.try_clone() {
        let _ = std::fs::File::from(clone).write_all(report.as_bytes());
    }
}

/// Reads `pipe` to its end: `None` if nothing was written, the reported failure otherwise.
pub fn receive(pipe: OwnedFd) -> Option<Error> {
    let mut text = String::new();
    let _ = std::fs::File::from(pipe).read_to_string(&mut text);
    parse(&text)
}

fn parse(text: &str) -> Option<Error> {
    if text.is_empty() {
        return None;
    }
    let (code, message) = text.split_once('\n').unwrap_or(("125", text));
    Some(Error::Container {
        code: code.parse().unwrap_or(125),
        message: message.to_owned(),
    })
}

/// Reports `error` and ends the calling process, which must be a forked child.
pub fn exit_with(pipe: &OwnedFd, error: &Error) -> ! {
    send(pipe, error);
    // SAFETY: _exit ends a forked child without running the parent's exit handlers.
    unsafe { libc::_exit(error.exit_code().into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trip_keeps_code_and_message() {
        let parsed = parse("127\nexecutable file not found in $PATH: nope").unwrap();
        assert_eq!(parsed.exit_code(), 127);
        assert_eq!(
            parsed.to_string(),
            "executable file not found in $PATH: nope"
        );
        assert!(parse("").is_none());
    }
}
