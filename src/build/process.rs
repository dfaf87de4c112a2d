//! Runs a build tool (docker, cargo) with its output streamed line by line, keeping the last
//! lines for the error message when it fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::exit::{Code, Error};

/// Lines of output kept for a failure's message.
const TAIL: usize = 40;

/// A tool's finished run: whether it succeeded and its last lines of output.
#[derive(Debug)]
pub struct Finished {
    /// Exit status was 0.
    pub success: bool,
    /// The last lines of stdout and stderr, interleaved as they came.
    pub tail: Vec<String>,
}

/// Runs `command`, calling `on_line` with every line of its stdout and stderr as it comes.
pub fn run(command: &mut Command, on_line: &mut dyn FnMut(&str)) -> Result<Finished, Error> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::usage(format!("cannot run {program}: {e}")))?;
    let (sender, lines) = mpsc::channel();
    let readers = [
        forward(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            sender.clone(),
        ),
        forward(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            sender,
        ),
    ];
    let mut tail = VecDeque::with_capacity(TAIL);
    for line in lines {
        on_line(&line);
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|e| Error::failed(format!("{program} did not finish: {e}")))?;
    if was_interrupted(status) {
        // Ctrl-C reaches the tool too (same process group): its tail would only say so.
        return Err(Error::new(
            Code::Interrupted,
            format!("interrupted: {program} was stopped before the build finished"),
        ));
    }
    Ok(Finished {
        success: status.success(),
        tail: tail.into(),
    })
}

/// Ended by Ctrl-C or a stop request: killed by SIGINT/SIGTERM, or exited 130 as shells and
/// some tools do after catching SIGINT.
fn was_interrupted(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    matches!(status.signal(), Some(SIGINT | SIGTERM)) || status.code() == Some(130)
}

fn forward(
    stream: Option<Box<dyn Read + Send>>,
    sender: mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(stream) = stream else { return };
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { return };
            // Progress output redraws with \r; keep what the line ended as.
            let text = String::from_utf8_lossy(&line);
            let text = text.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
            if sender.send(strip_ansi(text.trim_end())).is_err() {
                return;
            }
        }
    })
}

/// Drops terminal colour sequences: the classic builder colours stderr.
fn strip_ansi(text: &str) -> String {
    console::strip_ansi_codes(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_both_streams_arrive_and_failures_keep_the_tail() {
        let mut seen = Vec::new();
        let finished = run(
            Command::new("sh").args(["-c", "echo one; echo two >&2; printf 'a\\rb\\n'; exit 3"]),
            &mut |line| seen.push(line.to_string()),
        )
        .unwrap();
        assert!(!finished.success);
        seen.sort();
        assert_eq!(seen, ["b", "one", "two"]);
        assert_eq!(finished.tail.len(), 3);
    }

    /// `sh -c script` with SIGINT and SIGTERM handled as a tool in a terminal handles them. A
    /// shell keeps ignoring what was ignored when it started (tests run under `nohup` or `&` do
    /// that to SIGINT), and then `kill -INT $$` would do nothing.
    fn sh(script: &str) -> Command {
        use std::os::unix::process::CommandExt as _;
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
        command
    }

    #[test]
    fn a_tool_stopped_by_ctrl_c_is_an_interruption_not_a_failure() {
        for script in ["kill -INT $$", "kill -TERM $$", "exit 130"] {
            let err = run(&mut sh(script), &mut |_| {}).unwrap_err();
            assert_eq!(err.code, Code::Interrupted, "{script}: {err}");
            assert!(err.message.contains("sh was stopped"), "{err}");
        }
        for script in ["kill -KILL $$", "exit 1", "exit 101"] {
            let finished = run(&mut sh(script), &mut |_| {}).unwrap();
            assert!(!finished.success, "{script}");
        }
    }

    #[test]
    fn colour_sequences_are_dropped() {
        assert_eq!(strip_ansi("\x1b[91merror: x\x1b[0m"), "error: x");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let err = run(&mut Command::new("/nonexistent/tool"), &mut |_| {}).unwrap_err();
        assert!(
            err.message.contains("cannot run /nonexistent/tool"),
            "{err}"
        );
    }
}
