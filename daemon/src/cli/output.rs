//! Every line the CLI prints goes through here, so that a closed stdout never panics.
//!
//! `println!` panics when stdout is gone (`postern explain alice | head -1` closes the pipe
//! after one line; Rust ignores SIGPIPE, so the write fails with EPIPE). A reader that has
//! stopped reading wanted no more: that is a clean end, exit 0, nothing on stderr. Any other
//! write error is a runtime failure.

use std::io::Write;

use super::Failure;

/// Writes one line to stdout. `Err` ends the command: code 0 and no message when the reader
/// went away, a runtime failure otherwise.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    write_line(&mut out, args)
}

fn write_line<W: Write>(out: &mut W, args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::quiet(),
            _ => Failure::runtime(format!("stdout: {e}")),
        })
}

/// For the daemon: a line for whoever started it (scripts read the listening addresses),
/// never a reason to stop serving.
pub fn say(args: std::fmt::Arguments<'_>) {
    let _ = write_line(&mut std::io::stdout().lock(), args);
}

/// One line on stderr; a closed stderr is ignored (`eprintln!` would panic).
pub fn error_line(text: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "postern: {}",
        text.replace('\n', " ")
    );
}

/// `out!("…", args)`: [`line`] with format arguments, `?`-able in a command.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_a_quiet_clean_end() {
        let f = write_line(&mut Closed, format_args!("x")).err().unwrap();
        assert_eq!(f.code, 0);
        assert!(f.lines.is_empty());
    }
}
