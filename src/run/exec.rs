//! Finding the command in the container's `PATH` and replacing PID 1 with it.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::execve;

use super::spec::{get_env, Process, DEFAULT_PATH};
use super::Error;
use layerfs_registry::Platform;

/// Executes the process; returns only on failure. `foreign_platform` is the image's platform
/// when it differs from the host's, named in the error if the kernel cannot execute the
/// command's format.
pub fn exec(process: &Process, foreign_platform: Option<&Platform>) -> Error {
    let name = &process.args[0];
    let path_var = get_env(&process.env, "PATH").unwrap_or(DEFAULT_PATH);
    let Some(path) = find_executable(name, path_var) else {
        return Error::CommandNotFound(name.clone());
    };
    let args = match to_cstrings(&process.args) {
        Ok(args) => args,
        Err(error) => return error,
    };
    let env = match to_cstrings(&process.env) {
        Ok(env) => env,
        Err(error) => return error,
    };
    let program = match CString::new(path.as_os_str().as_encoded_bytes()) {
        Ok(program) => program,
        Err(_) => return Error::InvalidString(path.display().to_string()),
    };
    reset_signals();
    // Descriptors the caller of `layerfs run` left open (a directory, a pipe) would give the
    // container a way out of its root; only stdin, stdout and stderr pass.
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let marked =
        unsafe { libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if marked != 0 {
        return Error::System {
            action: "marking descriptors close-on-exec",
            source: std::io::Error::last_os_error(),
        };
    }
    let errno = match execve(&program, &args, &env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    match (errno, foreign_platform) {
        (Errno::ENOENT, _) => Error::CommandNotFound(path.display().to_string()),
        (Errno::ENOEXEC, Some(platform)) => Error::ForeignPlatform {
            path,
            image: Box::new(platform.clone()),
            host: Box::new(Platform::host()),
        },
        (errno, _) => Error::CannotExecute {
            path,
            reason: errno.desc().to_owned(),
        },
    }
}

/// Gives every signal its default action and unblocks them all. An ignored signal stays
/// ignored across execve(2), and the Rust runtime ignores SIGPIPE (so would whatever started
/// `layerfs`); the command must start as it would from a fresh shell.
fn reset_signals() {
    for number in 1..=libc::SIGRTMAX() {
        // SAFETY: installing SIG_DFL registers no handler. The call fails harmlessly for
        // SIGKILL, SIGSTOP and the real-time signals glibc reserves for itself.
        unsafe { libc::signal(number, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Finds the program to execute. A name with a slash is used as it is, and other names are
/// searched in `path_var`, as execvp(3) does.
fn find_executable(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path_var
        .split(':')
        .map(|dir| {
            if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(dir)
            }
        })
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn to_cstrings(items: &[String]) -> Result<Vec<CString>, Error> {
    items
        .iter()
        .map(|item| CString::new(item.as_bytes()).map_err(|_| Error::InvalidString(item.clone())))
        .collect()
}
