//! PHP's view of the extension: module start, request start and end, and the PHP
//! functions. Only wiring; the work is in the crate's modules.

use std::collections::HashMap;
use std::panic::catch_unwind;
use std::sync::atomic::Ordering;

use ext_php_rs::prelude::*;

use crate::overhead::{self, Phase};
use crate::{config, hooks, otlp, php, request, send, spawn};
use ext_php_rs::types::Zval;
use prost::Message;

const SUCCESS: i32 = 0;

fn profiling(c: &config::Config) -> bool {
    c.profile_sample > 0.0 || c.profile_threshold_ms > 0
}

unsafe extern "C" fn minit(_ty: i32, module_number: i32) -> i32 {
    let _ = catch_unwind(|| {
        let config = config::init(module_number);
        if !config.enabled {
            return;
        }
        overhead::enable(config.overhead_stats);
        request::open_active(config);
        request::watch_forks();
        hooks::register(profiling(config));
        spawn::forwarder(config);
    })
    .map_err(|_| hooks::FAILURES.fetch_add(1, Ordering::Relaxed));
    SUCCESS
}

unsafe extern "C" fn mshutdown(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(hooks::unregister);
    SUCCESS
}

unsafe extern "C" fn rinit(_ty: i32, _module_number: i32) -> i32 {
    hooks::mark_stack();
    let _ = catch_unwind(|| {
        let config = config::get();
        if config.enabled {
            let timer = overhead::start();
            request::begin(config, profiling(config));
            timer.stop(Phase::RequestStart);
        }
    })
    .map_err(|_| hooks::FAILURES.fetch_add(1, Ordering::Relaxed));
    SUCCESS
}

unsafe extern "C" fn rshutdown(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(|| {
        let config = config::get();
        if config.enabled {
            let timer = overhead::start();
            request::end(config);
            timer.stop(Phase::RequestEnd);
        }
    })
    .map_err(|_| hooks::FAILURES.fetch_add(1, Ordering::Relaxed));
    SUCCESS
}

/// Counters of this process: frames sent and dropped, hook failures caught, curl transfer
/// information that had to be asked of PHP (libcurl not reachable directly), SQL
/// parameters over the limits not recorded, and with
/// `tern.overhead_stats=1` the nanoseconds the extension spent in its own work.
#[php_function]
pub fn tern_stats() -> HashMap<String, i64> {
    let n = |v: u64| v as i64;
    [
        (
            "frames_sent".to_string(),
            n(send::SENT.load(Ordering::Relaxed)),
        ),
        (
            "frames_sent_shared".to_string(),
            n(send::SENT_SHARED.load(Ordering::Relaxed)),
        ),
        (
            "frames_dropped".to_string(),
            n(send::DROPPED.load(Ordering::Relaxed)),
        ),
        (
            "frames_dropped_full".to_string(),
            n(send::DROPPED_FULL.load(Ordering::Relaxed)),
        ),
        (
            "hook_failures".to_string(),
            n(hooks::FAILURES.load(Ordering::Relaxed)),
        ),
        (
            "curl_info_from_php".to_string(),
            n(hooks::curl::INFO_FROM_PHP.load(Ordering::Relaxed)),
        ),
        (
            "hooks_installed".to_string(),
            n(hooks::INSTALLED.load(Ordering::Relaxed) as u64),
        ),
        (
            "params_dropped".to_string(),
            n(crate::db::PARAMS_DROPPED.load(Ordering::Relaxed)),
        ),
        ("enabled".to_string(), config::get().enabled as i64),
    ]
    .into_iter()
    .chain(
        overhead::KEYS
            .iter()
            .zip(overhead::totals())
            .map(|(k, ns)| (k.to_string(), n(ns))),
    )
    .collect()
}

/// Decodes bytes read from the forwarder socket (one or more frames) into one flat map
/// per span (see `otlp::summary`). Invalid input gives an empty array.
#[php_function]
pub fn tern_decode_frame(bytes: &Zval) -> Vec<HashMap<String, String>> {
    let Some(bytes) = php::zval_bytes(bytes) else {
        return Vec::new();
    };
    let mut decoder = tern_php_wire::FrameDecoder::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = decoder.next_frame() {
        let Ok(req) =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                &frame[..],
            )
        else {
            break;
        };
        out.extend(
            otlp::summary(&req)
                .into_iter()
                .map(|m| m.into_iter().collect::<HashMap<_, _>>()),
        );
    }
    out
}

/// The running transactions in the active-transaction file (`tern.active_path`).
#[php_function]
pub fn tern_active_snapshot() -> Vec<HashMap<String, String>> {
    let Some(map) = request::active() else {
        return Vec::new();
    };
    map.snapshot()
        .into_iter()
        .map(|s| {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            HashMap::from([
                ("pid".to_string(), s.pid.to_string()),
                ("alive".to_string(), s.alive.to_string()),
                ("service".to_string(), s.service),
                ("method".to_string(), s.method),
                ("uri".to_string(), s.uri),
                ("trace_id".to_string(), hex(&s.trace_id)),
                (
                    "activity".to_string(),
                    format!("{:?}", s.activity_kind).to_lowercase(),
                ),
                ("activity_text".to_string(), s.activity_text),
                ("start_ns".to_string(), s.start_ns.to_string()),
            ])
        })
        .collect()
}

/// Names the current transaction, e.g. with the framework's route (`/orders/{id}`,
/// `orders.show`): its entry span becomes `GET /orders/{id}` and `http.route` that name,
/// whatever `tern.endpoint_naming` says. Empty names are refused; names are cut at 256
/// bytes. Returns whether a transaction is being recorded and took the name.
#[php_function]
pub fn tern_set_transaction_name(name: &Zval) -> bool {
    php::zval_bytes(name).is_some_and(request::set_name)
}

/// The path of this extension's shared object (so tests can start PHP children with
/// the same extension).
#[php_function]
pub fn tern_extension_path() -> String {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr on the address of a function of this object.
    let ok = unsafe { libc::dladdr(tern_extension_path as *const libc::c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return String::new();
    }
    // SAFETY: non-null C string owned by the dynamic loader.
    unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned()
}

/// The module.
#[php_module]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    module
        .name("tern")
        .version(env!("CARGO_PKG_VERSION"))
        .startup_function(minit)
        .shutdown_function(mshutdown)
        .request_startup_function(rinit)
        .request_shutdown_function(rshutdown)
        .function(wrap_function!(tern_stats))
        .function(wrap_function!(tern_decode_frame))
        .function(wrap_function!(tern_active_snapshot))
        .function(wrap_function!(tern_extension_path))
        .function(wrap_function!(tern_set_transaction_name))
}
