//! Progress on stderr while the CLI waits or works: an indicatif spinner with what it waits for
//! and the time so far when stderr is a terminal; one plain line per wait otherwise (logs of
//! scripts and CI stay readable). Results never go here: they go to stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Spinner,
    Lines,
    Quiet,
}

/// One running activity.
pub struct Activity {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Spinners on a terminal, lines otherwise.
    pub fn stderr() -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Spinner
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// Nothing at all (tests, `--output json` consumers that capture stderr too).
    pub fn quiet() -> Progress {
        Progress { mode: Mode::Quiet }
    }

    /// Start an activity described by `what` ("waiting for swarmhub-nfsd to run 1 task").
    pub fn spinner(&self, what: impl Into<String>) -> Activity {
        let what = what.into();
        match self.mode {
            Mode::Quiet => Activity { bar: None },
            Mode::Lines => {
                eprintln!("swarmhub: {what}");
                Activity { bar: None }
            }
            Mode::Spinner => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(what);
                bar.enable_steady_tick(Duration::from_millis(120));
                Activity { bar: Some(bar) }
            }
        }
    }

    /// Say something once (a line on stderr unless quiet).
    pub fn say(&self, line: impl AsRef<str>) {
        if self.mode != Mode::Quiet {
            eprintln!("swarmhub: {}", line.as_ref());
        }
    }
}

impl Activity {
    /// Update the text (spinner only; plain lines do not repeat themselves).
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(b) = &self.bar {
            b.set_message(msg.into());
        }
    }

    /// Remove the spinner.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.finish();
    }
}
