//! A proxy-wasm filter doing only what any cohort router must do per request: read the request
//! headers (one host call, as sluice must see every `x-sluice-*` name to strip it) and set the routing
//! header, after which Envoy re-resolves the route (under ABI 0.2.1 it does so on any request header
//! change). The load benchmark prints it beside the no-op and sluice, so the part of sluice's cost
//! that is sluice's own is visible.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot) });
}}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorHttp))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorHttp;

impl Context for FloorHttp {}

impl HttpContext for FloorHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers_bytes();
        // The cohort from the user id's last byte: both routes stay in use, as under sluice.
        let canary = headers
            .iter()
            .find(|(name, _)| name == "x-user-id")
            .and_then(|(_, value)| value.last())
            .is_some_and(|byte| byte % 2 == 1);
        let cohort = if canary { "canary" } else { "stable" };
        self.set_http_request_header("x-sluice-cohort", Some(cohort));
        Action::Continue
    }
}
