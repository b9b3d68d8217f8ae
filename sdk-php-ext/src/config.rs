//! INI settings: registered at module start, read once, validated. An invalid value
//! gives a startup warning naming the setting and falls back to a safe default; PHP
//! always starts.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::OnceLock;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{IniEntryDef, IniEntryDefs};

/// How a transaction is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The script path (`/index.php`).
    Script,
    /// The request path with ids collapsed (`/orders/{id}`).
    Uri,
    /// The framework's route when one is known, else as [`Naming::Uri`].
    Framework,
}

/// The extension's settings, read once at module start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tern.enabled` (default 1): record anything at all.
    pub enabled: bool,
    /// `tern.service_name` (default `php`): OTLP `service.name`.
    pub service_name: String,
    /// `tern.socket` (default `/tmp/tern-agent.sock`): the forwarder's unix stream socket.
    pub socket: String,
    /// `tern.active_path` (default `/dev/shm/tern-active`): the active-transaction file;
    /// empty disables publishing.
    pub active_path: String,
    /// `tern.forwarder` (default empty): path of `tern-agent` to start at module start
    /// when its socket does not answer; empty means it runs as a service.
    pub forwarder: String,
    /// `tern.collector` (default `http://127.0.0.1:4317`): OTLP gRPC URL handed to the
    /// forwarder the extension starts.
    pub collector: String,
    /// `tern.endpoint_naming` (default `uri`): `script`, `uri` or `framework`.
    pub naming: Naming,
    /// `tern.profile_sample` (default 0): share of requests, 0.0..=1.0, whose user
    /// function call tree is recorded.
    pub profile_sample: f64,
    /// `tern.profile_threshold_ms` (default 0 = off): requests slower than this keep their
    /// call tree (user calls are then always recorded, cheaply, and dropped when fast).
    pub profile_threshold_ms: u64,
    /// `tern.max_nodes` (default 2000, 10..=100000): most call-tree nodes per request.
    pub max_nodes: usize,
    /// `tern.capture_params` (default 0): record SQL bound parameters.
    pub capture_params: bool,
    /// `tern.curl_direct` (default 1): curl hooks call libcurl itself (transfer status,
    /// the `traceparent` header list) instead of PHP's `curl_getinfo`/`curl_setopt`;
    /// 0 always goes through PHP (slower, independent of PHP's `CurlHandle` layout).
    pub curl_direct: bool,
    /// `tern.propagate` (default 1): outgoing HTTP calls (curl, http streams) carry a W3C
    /// `traceparent`; 0 sends none (the calls are still recorded, an incoming
    /// `traceparent` is still continued).
    pub propagate: bool,
    /// `tern.overhead_stats` (default 0): measure the extension's own time (hooks,
    /// request start and end, sending) into `tern_stats()` (see `overhead.rs`).
    pub overhead_stats: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            service_name: "php".into(),
            socket: tern_php_wire::DEFAULT_SOCKET.into(),
            active_path: tern_php_wire::DEFAULT_ACTIVE_PATH.into(),
            forwarder: String::new(),
            collector: tern_php_wire::DEFAULT_COLLECTOR.into(),
            naming: Naming::Uri,
            profile_sample: 0.0,
            profile_threshold_ms: 0,
            max_nodes: 2000,
            capture_params: false,
            curl_direct: true,
            propagate: true,
            overhead_stats: false,
        }
    }
}

/// Every setting with its default, as registered with PHP.
static INI: IniEntryDefs<16> = IniEntryDefs::new([
    IniEntryDef::new(c"tern.enabled", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"tern.service_name", c"php", IniEntryPermission::PerDir),
    IniEntryDef::new(
        c"tern.socket",
        c"/tmp/tern-agent.sock",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"tern.active_path",
        c"/dev/shm/tern-active",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"tern.forwarder", c"", IniEntryPermission::System),
    IniEntryDef::new(
        c"tern.collector",
        c"http://127.0.0.1:4317",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"tern.endpoint_naming", c"uri", IniEntryPermission::System),
    IniEntryDef::new(c"tern.profile_sample", c"0", IniEntryPermission::System),
    IniEntryDef::new(
        c"tern.profile_threshold_ms",
        c"0",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"tern.max_nodes", c"2000", IniEntryPermission::System),
    IniEntryDef::new(c"tern.capture_params", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"tern.curl_direct", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"tern.propagate", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"tern.overhead_stats", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"tern.debug_dump", c"", IniEntryPermission::System),
    IniEntryDef::end(),
]);

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The settings (defaults before module start).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(Config::default)
}

unsafe extern "C" {
    fn zend_ini_string_ex(
        name: *const c_char,
        len: usize,
        orig: c_int,
        exists: *mut bool,
    ) -> *mut c_char;
    fn zend_error(kind: c_int, format: *const c_char, ...);
}

/// Emits a PHP warning (at module start: a startup warning).
pub fn warn(message: &str) {
    let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: "%s" with one valid C string.
    unsafe {
        zend_error(
            ext_php_rs::ffi::E_WARNING as c_int,
            c"%s".as_ptr(),
            msg.as_ptr(),
        )
    };
}

/// The raw value of INI setting `name` as PHP holds it now, handed to `f` (`None`: not
/// registered).
fn with_ini<R>(name: &str, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let mut exists = false;
    // SAFETY: name/len describe a valid buffer; the returned pointer is a C string owned
    // by the engine, read before anything can change it.
    let p = unsafe { zend_ini_string_ex(name.as_ptr().cast(), name.len(), 0, &mut exists) };
    if !exists || p.is_null() {
        return None;
    }
    // SAFETY: non-null C string from the engine.
    Some(f(unsafe { CStr::from_ptr(p) }.to_bytes()))
}

fn ini_value(name: &str) -> Option<String> {
    with_ini(name, |v| String::from_utf8_lossy(v).into_owned())
}

/// Registers the INI entries, reads and validates them, warns about invalid ones.
pub fn init(module_number: i32) -> &'static Config {
    IniEntryDef::register(INI.as_slice(), module_number);
    let (config, warnings) = parse(ini_value);
    for w in warnings {
        warn(&w);
    }
    CONFIG.get_or_init(|| config)
}

/// `tern.service_name` as in force now: php-fpm pools may set it per pool
/// (`php_admin_value`), after module start. Empty or missing gives the module-start value.
/// Written into `out`, which is left alone when it already holds it (one service per
/// process: no allocation per request).
pub fn service_name_into(out: &mut String) {
    let mut set = |v: &str| {
        if out != v {
            out.clear();
            out.push_str(v);
        }
    };
    let given = with_ini("tern.service_name", |v| {
        let v = crate::php::lossy(v);
        let v = v.trim();
        if !v.is_empty() {
            set(v);
        }
        !v.is_empty()
    });
    if given != Some(true) {
        set(&get().service_name);
    }
}

/// Path of `tern.debug_dump` (a file the summary of each frame is appended to; tests).
pub fn debug_dump() -> Option<String> {
    ini_value("tern.debug_dump").filter(|s| !s.is_empty())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" | "" => Some(false),
        _ => None,
    }
}

/// Builds the settings from a lookup of raw INI values; returns the warnings to emit.
pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
    let d = Config::default();
    let mut warnings = Vec::new();
    let mut bad = |name: &str, value: &str, expected: &str, default: &str| {
        warnings.push(format!(
            "tern: invalid {name} value '{value}' (expected {expected}); using {default}"
        ));
    };
    let boolean =
        |name: &str, default: bool, bad: &mut dyn FnMut(&str, &str, &str, &str)| match lookup(name)
        {
            None => default,
            Some(v) => parse_bool(&v).unwrap_or_else(|| {
                bad(name, &v, "0 or 1", if default { "1" } else { "0" });
                default
            }),
        };
    let enabled = boolean("tern.enabled", d.enabled, &mut bad);
    let capture_params = boolean("tern.capture_params", d.capture_params, &mut bad);
    let curl_direct = boolean("tern.curl_direct", d.curl_direct, &mut bad);
    let propagate = boolean("tern.propagate", d.propagate, &mut bad);
    let overhead_stats = boolean("tern.overhead_stats", d.overhead_stats, &mut bad);
    let text = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.to_string());
    let mut service_name = text("tern.service_name", &d.service_name)
        .trim()
        .to_string();
    if service_name.is_empty() {
        bad("tern.service_name", "", "a non-empty name", "'php'");
        service_name = d.service_name.clone();
    }
    let mut socket = text("tern.socket", &d.socket);
    if !socket.starts_with('/') || socket.len() > 107 {
        bad(
            "tern.socket",
            &socket,
            "an absolute path of at most 107 bytes",
            &d.socket,
        );
        socket = d.socket.clone();
    }
    let mut active_path = text("tern.active_path", &d.active_path);
    if !active_path.is_empty() && !active_path.starts_with('/') {
        bad(
            "tern.active_path",
            &active_path,
            "an absolute path or empty",
            &d.active_path,
        );
        active_path = d.active_path.clone();
    }
    let forwarder = text("tern.forwarder", "");
    let mut collector = text("tern.collector", &d.collector);
    if !(collector.starts_with("http://") || collector.starts_with("https://")) {
        bad(
            "tern.collector",
            &collector,
            "an http:// or https:// URL",
            &d.collector,
        );
        collector = d.collector.clone();
    }
    let naming_raw = text("tern.endpoint_naming", "uri");
    let naming = match naming_raw.trim().to_ascii_lowercase().as_str() {
        "script" => Naming::Script,
        "uri" => Naming::Uri,
        "framework" => Naming::Framework,
        _ => {
            bad(
                "tern.endpoint_naming",
                &naming_raw,
                "script, uri or framework",
                "uri",
            );
            Naming::Uri
        }
    };
    let sample_raw = text("tern.profile_sample", "0");
    let profile_sample = match sample_raw.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => v,
        _ => {
            bad(
                "tern.profile_sample",
                &sample_raw,
                "a number from 0 to 1",
                "0",
            );
            0.0
        }
    };
    let threshold_raw = text("tern.profile_threshold_ms", "0");
    let profile_threshold_ms = threshold_raw.trim().parse::<u64>().unwrap_or_else(|_| {
        bad(
            "tern.profile_threshold_ms",
            &threshold_raw,
            "a whole number of milliseconds",
            "0 (off)",
        );
        0
    });
    let nodes_raw = text("tern.max_nodes", "2000");
    let max_nodes = match nodes_raw.trim().parse::<usize>() {
        Ok(n) if (10..=100_000).contains(&n) => n,
        _ => {
            bad(
                "tern.max_nodes",
                &nodes_raw,
                "a whole number from 10 to 100000",
                "2000",
            );
            d.max_nodes
        }
    };
    let config = Config {
        enabled,
        service_name,
        socket,
        active_path,
        forwarder,
        collector,
        naming,
        profile_sample,
        profile_threshold_ms,
        max_nodes,
        capture_params,
        curl_direct,
        propagate,
        overhead_stats,
    };
    (config, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn no_settings_give_the_documented_defaults_without_warnings() {
        assert_eq!(from(&[]), (Config::default(), vec![]));
    }

    #[test]
    fn valid_settings_are_taken() {
        let (c, w) = from(&[
            ("tern.enabled", "off"),
            ("tern.endpoint_naming", "Script"),
            ("tern.profile_sample", "0.25"),
            ("tern.profile_threshold_ms", "150"),
            ("tern.max_nodes", "500"),
            ("tern.capture_params", "1"),
            ("tern.curl_direct", "0"),
            ("tern.propagate", "0"),
            ("tern.overhead_stats", "1"),
            ("tern.service_name", "shop"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(!c.enabled && c.capture_params && !c.curl_direct && !c.propagate);
        assert!(c.overhead_stats);
        assert_eq!(
            (
                c.naming,
                c.profile_sample,
                c.profile_threshold_ms,
                c.max_nodes
            ),
            (Naming::Script, 0.25, 150, 500)
        );
        assert_eq!(c.service_name, "shop");
    }

    #[test]
    fn each_invalid_value_warns_with_its_name_and_falls_back() {
        let (c, w) = from(&[
            ("tern.enabled", "maybe"),
            ("tern.endpoint_naming", "route"),
            ("tern.profile_sample", "2"),
            ("tern.profile_threshold_ms", "-5"),
            ("tern.max_nodes", "3"),
            ("tern.socket", "relative.sock"),
            ("tern.collector", "localhost:4317"),
            ("tern.curl_direct", "sometimes"),
            ("tern.propagate", "yes please"),
            ("tern.overhead_stats", "2"),
        ]);
        assert_eq!(c, Config::default());
        for name in [
            "tern.enabled",
            "tern.endpoint_naming",
            "tern.profile_sample",
            "tern.profile_threshold_ms",
            "tern.max_nodes",
            "tern.socket",
            "tern.collector",
            "tern.curl_direct",
            "tern.propagate",
            "tern.overhead_stats",
        ] {
            assert!(
                w.iter().any(|m| m.contains(name)),
                "no warning for {name}: {w:?}"
            );
        }
    }
}
