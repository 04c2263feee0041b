//! `wasi:logging`: a guest's log lines go to `tracing` under the target
//! `zhongtai::guest`, with the package, department and request id.

use super::HostState;
use super::wasi::logging::logging;

/// Longest log message kept from a guest, in bytes; the rest is cut.
const MAX_LOG_BYTES: usize = 8 * 1024;

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
