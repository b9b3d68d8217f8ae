//! Starting the forwarder from module start (`tern.forwarder`): once per master process,
//! before php-fpm forks, only when its socket does not answer. Double fork + `setsid`, so
//! the forwarder is a daemon that PHP never waits for and never reaps.

use std::ffi::CString;

use crate::config::Config;
use crate::send;

/// Starts `tern-agent` unless its socket answers. Returns whether a start was attempted.
pub fn forwarder(config: &Config) -> bool {
    if config.forwarder.is_empty() {
        return false;
    }
    let fd = send::connect(&config.socket);
    if fd >= 0 {
        // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
        return false;
    }
    let args = [
        config.forwarder.as_str(),
        "--socket",
        config.socket.as_str(),
        "--active",
        config.active_path.as_str(),
        "--endpoint",
        config.collector.as_str(),
    ];
    let Ok(cargs) = args
        .iter()
        .map(|a| CString::new(*a))
        .collect::<Result<Vec<_>, _>>()
    else {
        crate::config::warn("tern: tern.forwarder contains a NUL byte; not started");
        return false;
    };
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // Everything the children need is prepared before forking: they only make syscalls.
    // SAFETY: fork/setsid/execv with valid, NUL-terminated arguments; the children never
    // return into PHP (they exec or _exit).
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            crate::config::warn("tern: could not fork to start the forwarder");
            return false;
        }
        if pid == 0 {
            libc::setsid();
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
            }
            for fd in 3..1024 {
                libc::close(fd);
            }
            libc::execv(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    true
}
