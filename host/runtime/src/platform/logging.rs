//! `wasi:logging`: a guest's log lines go to `tracing` under the target
//! `zhongtai::guest`, with the package, department and request id. A line
//! is cut at [`MAX_LOG_BYTES`], and a call writes at most
//! [`MAX_LOG_LINES`]: after that one warning says the rest were dropped.

use super::HostState;
use super::wasi::logging::logging;

/// Longest log message kept from a guest, in bytes; the rest is cut.
pub const MAX_LOG_BYTES: usize = 8 * 1024;

/// Most log lines one call writes; the rest are dropped.
pub const MAX_LOG_LINES: u32 = 1000;

fn cut(text: &str) -> &str {
    if text.len() <= MAX_LOG_BYTES {
        return text;
    }
    let mut end = MAX_LOG_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl logging::Host for HostState {
    fn log(
        &mut self,
        level: logging::Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        let package = &*self.package;
        let department = self.context.department.as_str();
        let request_id = &self.context.request_id;
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(
                    target: "zhongtai::guest",
                    package,
                    department,
                    request_id,
                    "the call wrote {MAX_LOG_LINES} log lines; its further lines are dropped"
                );
            }
            return Ok(());
        }
        let (context, message) = (cut(&context), cut(&message));
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(target: "zhongtai::guest", package, department, request_id, context, "{message}")
            };
        }
        match level {
            logging::Level::Trace => emit!(trace),
            logging::Level::Debug => emit!(debug),
            logging::Level::Info => emit!(info),
            logging::Level::Warn => emit!(warn),
            logging::Level::Error | logging::Level::Critical => emit!(error),
        }
        Ok(())
    }
}
