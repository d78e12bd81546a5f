//! The real binary at a pseudo-terminal: what a person at a terminal sees, and keys typed when
//! a prompt is shown (stdin, stdout and stderr are the terminal).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared module"
)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

/// A program running at a pseudo-terminal.
pub struct Terminal {
    child: Child,
    keyboard: File,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Terminal {
    /// Starts `cmd` with a new pseudo-terminal as its stdin, stdout and stderr (80×24).
    pub fn start(mut cmd: Command) -> Self {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("a pseudo-terminal can be opened");
        let slave = |fd: &std::os::fd::OwnedFd| {
            Stdio::from(
                fd.try_clone()
                    .expect("the terminal's descriptor can be cloned"),
            )
        };
        cmd.stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave));
        let child = cmd.spawn().expect("the program starts");
        // Only the child keeps the terminal's slave end: reads end when it exits.
        drop(cmd);
        drop(pty.slave);
        let master = File::from(pty.master);
        let keyboard = master
            .try_clone()
            .expect("the terminal's descriptor can be cloned");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut master = master;
            let mut buf = [0u8; 4096];
            // EIO once the child and its descendants have closed the terminal.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .expect("the screen is readable")
                    .extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            keyboard,
            screen,
            reader: Some(reader),
        }
    }

    /// Everything the program wrote so far (and the keys echoed).
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("the screen is readable")).into_owned()
    }

    /// How many times `text` is on the screen.
    pub fn count(&self, text: &str) -> usize {
        self.screen().matches(text).count()
    }

    /// Waits until `text` is on the screen `times` times; panics with the screen after `limit`.
    #[track_caller]
    pub fn wait_for(&self, text: &str, times: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.count(text) < times {
            assert!(
                Instant::now() < deadline,
                "{text:?} was not shown {times} time(s) within {limit:?}; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types keys.
    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard
            .write_all(keys.as_bytes())
            .expect("keys can be typed");
        self.keyboard.flush().expect("keys can be typed");
    }

    /// Whether the program still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the program can be waited for")
            .is_none()
    }

    /// Waits for the program to end; its exit code and the whole screen. Panics after `limit`.
    #[track_caller]
    pub fn finish(mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the program can be waited for")
            {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the program did not end within {limit:?}; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status.code().unwrap_or(-1), self.screen())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
