//! sluice proxy-wasm HTTP filter (ABI 0.2.1). Compiles the config once per `on_configure` (refusing one
//! older than the generation in force), shares it with every HTTP context of the worker, delegates each
//! request to `glue::on_request`, and counts each response in its rollout's guardrail window
//! (`guardrail`, kept in shared data by `shared_window`).

mod active;
pub mod glue;
pub mod guardrail;
mod metrics;
pub mod mirror;
mod mirror_send;
pub mod shared_config;
pub mod shared_window;

use active::{unix_ms, Active};
use cohort::{CompiledConfig, Decision};
use guardrail::Guardrails;
use metrics::ConfigMetrics;
use mirror_send::RequestCopy;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use shared_config::Source;
use shared_window::{admit_generation, generation_key, Admission, HostSharedData};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CONFIG_METRICS: Cell<Option<ConfigMetrics>> = const { Cell::new(None) };
    static REQUEST_COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// How often a worker writes the guardrail counts it still holds and refreshes its gauges.
const TICK: std::time::Duration = std::time::Duration::from_millis(100);
/// How often a worker sends its queued mirror copies while a stage mirrors: a copy leaves at most this
/// long after its request.
const MIRROR_TICK: std::time::Duration = std::time::Duration::from_millis(10);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    // No panic hook: the module is built with panic = "immediate-abort" (scripts/build-wasm.sh), so
    // a panic traps at once and Envoy logs the trap; clippy denies the calls that could panic.
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(SluiceRoot { id, active: None, guardrail_tick_ms: 0, closing: false })
    });
}}

struct SluiceRoot {
    /// This root context's id: the copies it sends are its calls.
    id: u32,
    active: Option<Rc<Active>>,
    /// When the guardrails last had their tick (the root ticks faster while a stage mirrors).
    guardrail_tick_ms: u64,
    /// Replaced by a newer config's root, waiting for the answers to the copies it sent: the host
    /// would cancel them with this context, and they would never be counted.
    closing: bool,
}

impl Context for SluiceRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        let status = self.get_http_call_response_header_bytes(":status");
        let now = self.get_current_time();
        mirror_send::on_answer(token, status.as_deref(), now);
        if self.closing {
            self.done_when_answered();
        } else {
            // Copies queued since the last tick need not wait for the next one.
            mirror_send::send_queued(self.id, now);
        }
    }

    /// A newer config replaces this root: it stays until the copies it sent are answered.
    fn on_done(&mut self) -> bool {
        self.closing = mirror_send::in_flight_of(self.id) > 0;
        !self.closing
    }
}

impl SluiceRoot {
    /// Tells the host this closing root is done once no copy it sent is unanswered.
    fn done_when_answered(&self) {
        if mirror_send::in_flight_of(self.id) == 0 {
            self.done();
        }
    }

    /// The plugin's name (Istio: `<namespace>.<WasmPlugin>`), which scopes its shared data.
    fn plugin_name(&self) -> String {
        self.get_property(vec!["plugin_name"])
            .and_then(|name| String::from_utf8(name).ok())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "sluice".to_string())
    }
}

impl RootContext for SluiceRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config_metrics = CONFIG_METRICS.get().or_else(metrics::define_config_metrics);
        CONFIG_METRICS.set(config_metrics);
        let reject = || {
            if let Some(m) = config_metrics {
                metrics::increment(m.rejected);
            }
            // Returning false makes Envoy reject the update (ECDS NACK, `update_rejected` stat): the
            // previous filter config, with its root context, keeps serving. Proven in tests/.
            false
        };
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let plugin = self.plugin_name();
        let (config, source) = match shared_config::compile(&HostSharedData, &plugin, &bytes) {
            Ok(compiled) => compiled,
            Err(error) => {
                // The error cuts and redacts values itself; the document is never logged.
                log::error!("sluice: {error}; update rejected, the previous config keeps serving");
                return reject();
            }
        };
        drop(bytes);
        let generation = config.generation();
        let now_ms = unix_ms(self.get_current_time());
        let admission = admit_generation(
            &HostSharedData,
            &generation_key(&plugin),
            generation,
            now_ms,
        );
        if let Admission::Stale { in_force } = admission {
            log::error!(
                "sluice: config generation {generation} is older than generation {in_force} in \
                 force; update rejected, the previous config keeps serving"
            );
            return reject();
        }
        let guardrails = Guardrails::configure(&config, &plugin, now_ms);
        let metrics = metrics::define_rollout_metrics(&config);
        let mirror_metrics = metrics::define_mirror_metrics(&config);
        let mirrors = mirror_metrics.iter().any(Option::is_some);
        log::info!(
            "sluice: config generation {generation} applied ({} rollouts; city table {})",
            config.rollouts().len(),
            match source {
                Source::Compiled => "compiled here",
                Source::Loaded => "loaded from shared data",
            }
        );
        if let Some(m) = config_metrics {
            metrics::record(m.generation, generation);
        }
        active::configured(generation);
        // Always ticking: copies an older config queued or sent are still sent or written off here.
        self.set_tick_period(if mirrors { MIRROR_TICK } else { TICK });
        self.active = Some(Rc::new(Active {
            config,
            metrics,
            mirror_metrics,
            guardrails,
        }));
        true
    }

    fn on_tick(&mut self) {
        metrics::record_memory_size();
        let now = self.get_current_time();
        mirror_send::expire(now);
        if self.closing {
            // The newest root sends what is queued; this one only waits for its answers.
            self.done_when_answered();
            return;
        }
        mirror_send::send_queued(self.id, now);
        let now_ms = unix_ms(now);
        if let Some(active) = &self.active {
            if now_ms.saturating_sub(self.guardrail_tick_ms) >= TICK.as_millis() as u64 {
                self.guardrail_tick_ms = now_ms;
                active.guardrails.on_tick(&active.config, now_ms);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(SluiceHttp {
            active: self.active.clone(),
            decision: None,
            started: None,
            copy: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct SluiceHttp {
    active: Option<Rc<Active>>,
    decision: Option<Decision>,
    started: Option<SystemTime>,
    /// This request's mirror copy, if a stage copies it.
    copy: Option<RequestCopy>,
}

impl Context for SluiceHttp {}

impl glue::RequestHost for SluiceHttp {
    // Under ABI 0.2.1 (what proxy-wasm 0.2 declares) Envoy re-resolves the route after every change
    // to the request headers itself; a `clear_route_cache` call on top cost a host call per request.
    // Newer ABIs do not, and the routing tests in tests/ fail if the route stops following the header.
    fn set_header(&mut self, name: &str, value: &str) {
        self.set_http_request_header(name, Some(value));
    }
    fn remove_header(&mut self, name: &str) {
        self.set_http_request_header(name, None);
    }
    fn guardrail_tripped(&self, rollout: usize) -> bool {
        let now = self.started.unwrap_or_else(|| self.get_current_time());
        self.active
            .as_ref()
            .is_some_and(|a| a.guardrails.tripped(rollout, unix_ms(now)))
    }
}

impl SluiceHttp {
    /// Per-request randomness for users without an id (`when_missing: random`); not client-controlled.
    fn random(&self) -> u32 {
        let count = REQUEST_COUNTER.get().wrapping_add(1);
        REQUEST_COUNTER.set(count);
        let nanos = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut seed = [0u8; 12];
        seed[..8].copy_from_slice(&nanos.to_le_bytes());
        seed[8..].copy_from_slice(&count.to_le_bytes());
        cohort::murmur3::murmur3_x86_32(&seed, 0x5eed)
    }
}

impl SluiceHttp {
    /// The request is whole: its copy is queued, or dropped (and counted) when it cannot be made.
    fn queue_copy(&mut self) {
        if self.copy.as_mut().is_some_and(|c| !c.queue()) {
            if let Some(copy) = self.copy.take() {
                copy.skip();
            }
        }
    }
}

impl HttpContext for SluiceHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let active = self.active.clone();
        let config = active.as_deref().map(|a| &a.config);
        // The clock is read for randomness only where a config asks for it.
        let random = match config.map(CompiledConfig::when_missing) {
            Some(cohort::WhenMissing::Random) => self.random(),
            _ => 0,
        };
        if config.is_some() {
            // Read once: the guardrail's clock and the start of the upstream latency.
            self.started = Some(self.get_current_time());
        }
        // Read once, in one host call: decided on, and copied when a mirror takes this request.
        let headers = self.get_http_request_headers_bytes();
        let outcome = glue::on_request(config, self, &headers, random);
        if outcome.override_rejected {
            if let Some(m) = CONFIG_METRICS.get() {
                metrics::increment(m.override_rejected);
            }
        }
        self.decision = outcome.decision;
        if let Some(d) = self.decision {
            log::debug!(
                "sluice: rollout {} -> {:?} ({:?})",
                d.rollout,
                d.cohort,
                d.reason
            );
        }
        if let (Some(active), Some(decision)) = (active, self.decision) {
            let mirror =
                glue::mirror_of(&active.config, &decision, &headers, !end_of_stream, || {
                    self.random()
                })
                .map(|m| (m.cluster.clone(), m.timeout_ms));
            if let Some((cluster, timeout_ms)) = mirror {
                self.copy =
                    RequestCopy::start((active, decision.rollout), headers, cluster, timeout_ms);
                if end_of_stream {
                    self.queue_copy();
                }
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.copy.as_ref().is_some_and(RequestCopy::wants_body) {
            // Only this chunk: the filter lets each one through, so the user's request is never held.
            let chunk = self.get_http_request_body(0, body_size).unwrap_or_default();
            let kept = self.copy.as_mut().is_some_and(|c| c.add_body(&chunk));
            if !kept {
                if let Some(copy) = self.copy.take() {
                    copy.skip();
                }
            } else if end_of_stream {
                self.queue_copy();
            }
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.queue_copy();
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(copy) = self.copy.take() {
            copy.request_ended();
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (Some(active), Some(decision)) = (self.active.clone(), self.decision.take()) else {
            return Action::Continue;
        };
        let server_error =
            glue::is_server_error(self.get_http_response_header_bytes(":status").as_deref());
        let now = self.get_current_time();
        if let Some(Some(m)) = active
            .metrics
            .get(decision.rollout)
            .map(|pair| pair[glue::cohort_index(decision.cohort)])
        {
            metrics::increment(m.requests);
            if server_error {
                metrics::increment(m.server_errors);
            }
            if let Some(started) = self.started {
                let elapsed = now
                    .duration_since(started)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                metrics::record(m.upstream_latency_ms, elapsed);
            }
        }
        if let Some(copy) = &self.copy {
            copy.primary_answered(self.get_http_response_header_bytes(":status").as_deref());
        }
        if glue::counts_for_guardrail(&decision) && active.is_newest() {
            let response = shared_window::Response {
                at_ms: unix_ms(now),
                cohort: decision.cohort,
                server_error,
            };
            active
                .guardrails
                .on_response(&active.config, decision.rollout, response);
        }
        Action::Continue
    }
}
