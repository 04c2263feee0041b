//! `zhongtai:platform/context`: who is calling, as the host established it
//! (never from a guest's arguments).

use super::HostState;
use super::zhongtai::platform::context;

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
