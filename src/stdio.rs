//! Writing the binary's output and messages to stdout and stderr.
//!
//! `print!` and `eprintln!` panic when the stream is closed under them
//! (`inject ... | head`, `check ... 2>&1 | head`), which would end a command
//! with exit 101 and a panic message. Every subcommand writes through these two
//! functions instead: a reader that stopped early is not an error.

use std::io::Write;
use std::process::ExitCode;

/// Writes a command's output to stdout and returns `code`.
///
/// When stdout is closed the command ends quietly with the exit code it would
/// have had. Any other write failure (a full disk) is reported and exits 2,
/// because the output is then incomplete.
pub fn write_stdout(text: &str, code: ExitCode) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            eprint_line(format_args!(
                "error: cannot write the output to stdout: {e}"
            ));
            ExitCode::from(2)
        }
    }
}

/// Writes one line to stderr; a message nobody can read any more is dropped.
pub fn eprint_line(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}
