//! `sluice status --watch`: the status again every few seconds until Ctrl-C. On a terminal each frame
//! replaces the last (ANSI: cursor home, clear screen); into a pipe or a file, frames follow each
//! other a blank line apart, so a log keeps every snapshot.

use super::output::Format;
use controller::Result;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Prints `frame()` now and every `every` until Ctrl-C.
pub async fn watch<F, Fut>(every: Duration, format: Format, mut frame: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String>>,
{
    let terminal = std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut first = true;
    loop {
        let body = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            body = frame() => body,
        };
        let body = match body {
            Ok(body) => body,
            // A first failure is a mistake (no cluster, an unreadable file): say it and stop. A later
            // one is a blip of a running system: show it and keep watching.
            Err(e) if first => return Err(e),
            Err(e) => format!("sluice: {e}\n"),
        };
        let text = frame_text(
            &Frame {
                first,
                terminal,
                format,
                every,
            },
            SystemTime::now(),
            &body,
        );
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the watch like Ctrl-C.
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
        drop(out);
        first = false;
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

pub struct Frame {
    pub first: bool,
    pub terminal: bool,
    pub format: Format,
    pub every: Duration,
}

/// One frame as printed: the table gets a line with the refresh period and the time; JSON and YAML
/// stay documents a script can parse (YAML ones separated by `---`).
pub fn frame_text(frame: &Frame, now: SystemTime, body: &str) -> String {
    let mut text = String::new();
    if frame.terminal {
        text.push_str(CLEAR_SCREEN);
    } else if !frame.first {
        text.push('\n');
        if frame.format == Format::Yaml {
            text.push_str("---\n");
        }
    }
    if frame.format == Format::Table {
        text.push_str(&format!(
            "Every {}: sluice status   {}\n\n",
            humantime::format_duration(frame.every),
            humantime::format_rfc3339_seconds(now)
        ));
    }
    text.push_str(body);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: bool, terminal: bool, format: Format) -> String {
        let frame = Frame {
            first,
            terminal,
            format,
            every: Duration::from_secs(2),
        };
        frame_text(&frame, SystemTime::UNIX_EPOCH, "BODY\n")
    }

    #[test]
    fn on_a_terminal_each_frame_clears_the_screen_first() {
        for first in [true, false] {
            assert_eq!(
                frame(first, true, Format::Table),
                "\x1b[H\x1b[2JEvery 2s: sluice status   1970-01-01T00:00:00Z\n\nBODY\n"
            );
        }
    }

    #[test]
    fn into_a_pipe_snapshots_follow_each_other_a_blank_line_apart() {
        assert_eq!(
            frame(true, false, Format::Table),
            "Every 2s: sluice status   1970-01-01T00:00:00Z\n\nBODY\n"
        );
        assert_eq!(
            frame(false, false, Format::Table),
            "\nEvery 2s: sluice status   1970-01-01T00:00:00Z\n\nBODY\n"
        );
        // Scripts get documents only: JSON values one after another, a YAML stream.
        assert_eq!(frame(true, false, Format::Json), "BODY\n");
        assert_eq!(frame(false, false, Format::Json), "\nBODY\n");
        assert_eq!(frame(false, false, Format::Yaml), "\n---\nBODY\n");
    }
}
