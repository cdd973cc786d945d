//! Per-layer progress lines on a terminal; nothing when stderr is not one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use layerfs_registry::Digest;

/// Progress display for one pull.
#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Draws on stderr if it is a terminal, otherwise stays silent.
    pub fn for_stderr() -> Progress {
        if std::io::stderr().is_terminal() {
            let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            Progress { bars: Some(bars) }
        } else {
            Progress::hidden()
        }
    }

    pub fn hidden() -> Progress {
        Progress { bars: None }
    }

    /// Adds the line for one layer.
    pub fn layer(&self, digest: &Digest, size: u64) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let style =
            ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}")
                .expect("the template is valid")
                .progress_chars("=> ");
        let bar = bars.add(ProgressBar::new(size).with_style(style));
        bar.set_prefix(digest.short().to_owned());
        bar.set_message("waiting");
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

/// Ends a layer's line with a final word ("done", "exists").
pub fn finish(bar: &ProgressBar, message: &'static str) {
    if let Some(length) = bar.length() {
        bar.set_position(length);
    }
    bar.finish_with_message(message);
}
