//! `wasi:config`, `wasi:logging` and `zhongtai:platform/context`.

use super::HostState;
use super::wasi::config::store as config;
use super::wasi::logging::logging;
use super::zhongtai::platform::context;

/// Longest log message kept from a guest, in bytes; the rest is cut.
const MAX_LOG_BYTES: usize = 8 * 1024;

impl config::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, config::Error>> {
        Ok(Ok(self.config.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, config::Error>> {
        Ok(Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}

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

impl context::Host for HostState {
    fn current(&mut self) -> wasmtime::Result<context::CallContext> {
        Ok(context::CallContext {
            department: self.context.department.as_str().to_owned(),
            service: self.context.service.as_str().to_owned(),
            request_id: self.context.request_id.clone(),
            subject: self.context.subject.clone(),
        })
    }
}
