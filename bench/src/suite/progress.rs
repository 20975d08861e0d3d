//! Progress while the suite runs: an indicatif bar on a terminal, plain
//! `[suite]` lines on stderr otherwise (CI logs, pipes) and in quick mode.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `total` runs; a bar only when stdout and stderr are terminals and
    /// `quiet` (quick mode) is off.
    pub fn new(total: u64, quiet: bool) -> Progress {
        let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} runs, eta {eta} {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Progress { bar }
    }

    /// What is running now.
    pub fn start(&self, what: &str) {
        match &self.bar {
            Some(b) => b.set_message(what.to_string()),
            None => eprintln!("[suite] {what}"),
        }
    }

    /// A line that stays (a finished run's figure).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("[suite] {text}"),
        }
    }

    pub fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
