//! Progress bars around indicatif: a bar with ETA, a spinner, and a shared
//! [`Progress`] handle (one `MultiProgress`) for runs with nested steps.
//!
//! Everything is hidden when `WELLSPRING_QUIET=1` or stderr is not a terminal
//! (CI logs, tests), so progress output never mixes into captured results.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub use indicatif::ProgressBar;
use indicatif::{MultiProgress, ProgressDrawTarget, ProgressStyle};

/// Environment variable that hides all progress output when set to `1`.
pub const QUIET_ENV: &str = "WELLSPRING_QUIET";

/// Whether progress output is suppressed: `WELLSPRING_QUIET=1`, or stderr is
/// not a terminal.
pub fn is_quiet() -> bool {
    std::env::var(QUIET_ENV).is_ok_and(|v| v == "1") || !std::io::stderr().is_terminal()
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner:.green} {msg:32!} [{bar:30.cyan/blue}] {human_pos}/{human_len} {elapsed_precise} (ETA {eta})",
    )
    .expect("constant template is valid")
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} {msg} {elapsed}")
        .expect("constant template is valid")
}

/// A standalone progress bar of `len` steps with ETA (hidden when quiet).
pub fn bar(len: u64, msg: impl Into<Cow<'static, str>>) -> ProgressBar {
    Progress::new().bar(len, msg)
}

/// A standalone spinner for steps of unknown length (hidden when quiet).
pub fn spinner(msg: impl Into<Cow<'static, str>>) -> ProgressBar {
    Progress::new().spinner(msg)
}

/// A shared handle for the progress output of one run: bars added through it
/// stack instead of overwriting each other. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Progress {
    multi: MultiProgress,
    hidden: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Visible on a terminal, hidden when [`is_quiet`].
    pub fn new() -> Self {
        if is_quiet() {
            Progress::hidden()
        } else {
            Progress {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                hidden: false,
            }
        }
    }

    /// Never draws anything (tests, library use).
    pub fn hidden() -> Self {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            hidden: true,
        }
    }

    /// Whether this handle draws nothing.
    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    /// The underlying `MultiProgress`, for custom bars.
    pub fn multi(&self) -> &MultiProgress {
        &self.multi
    }

    /// A bar of `len` steps with position, elapsed time and ETA.
    pub fn bar(&self, len: u64, msg: impl Into<Cow<'static, str>>) -> ProgressBar {
        let pb = self.multi.add(ProgressBar::new(len));
        pb.set_style(bar_style());
        pb.set_message(msg);
        pb
    }

    /// A spinner for a step of unknown length; ticks on its own.
    pub fn spinner(&self, msg: impl Into<Cow<'static, str>>) -> ProgressBar {
        let pb = self.multi.add(ProgressBar::new_spinner());
        pb.set_style(spinner_style());
        pb.set_message(msg);
        if !self.hidden {
            pb.enable_steady_tick(Duration::from_millis(120));
        }
        pb
    }

    /// Prints a line above the bars (to stderr); nothing when hidden.
    pub fn println(&self, line: impl AsRef<str>) {
        if !self.hidden {
            // Only fails when the terminal is gone; nothing useful to do then.
            let _ = self.multi.println(line);
        }
    }

    /// Runs `f` under a spinner labelled `msg`, then leaves a line
    /// "`msg` (1.2 s)"; returns `f`'s result and its wall time.
    pub fn step<T>(&self, msg: &str, f: impl FnOnce() -> T) -> (T, Duration) {
        let pb = self.spinner(msg.to_string());
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        pb.finish_and_clear();
        self.println(format!(
            "✓ {msg} ({})",
            crate::report::format_duration(took.as_secs_f64())
        ));
        (out, took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_runs_steps_silently() {
        let p = Progress::hidden();
        assert!(p.is_hidden());
        let b = p.bar(10, "work");
        b.inc(3);
        assert_eq!(b.position(), 3);
        b.finish();
        let (v, _took) = p.step("compute", || 6 * 7);
        assert_eq!(v, 42);
    }
}
