//! Progress bars on stderr, driven by the library's `ProgressFn` callbacks; hidden when stderr
//! is not a terminal (scripts and tests see no bar).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kv_api::Progress;

/// One bar for one long operation.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar titled `what`, drawn only if stderr is a terminal.
    pub fn new(what: &str) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target).with_prefix(what.to_string());
        bar.set_style(
            ProgressStyle::with_template("{prefix} {msg:>10} [{bar:30}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar(bar)
    }

    /// The callback to hand to the library.
    pub fn report(&self, p: Progress) {
        if p.total > 0 {
            self.0.set_length(p.total.max(p.done));
        }
        self.0.set_message(p.stage);
        self.0.set_position(p.done);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
