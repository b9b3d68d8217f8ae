//! The PHP stack for the PHP agent's integration tests and benchmark: php-fpm (with or
//! without the `tern.so` extension), nginx in front of it, MariaDB, a local HTTP server
//! as the target of outgoing calls, and the `tern-agent` forwarder. Every piece runs on
//! free loopback ports or in a temporary directory and is stopped on drop.
//!
//! Needs Debian's `php8.2-fpm`, `nginx`, `mariadb-server` (installed by `scripts/setup.sh`)
//! and, for the extension, `target/debug/libtern.so` (`cargo build -p tern-php`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{bin_dir, free_port, wait_for};

const START: Duration = Duration::from_secs(60);

/// A child process killed (and reaped) on drop.
struct Proc(Option<Child>);

impl Proc {
    fn spawn(cmd: &mut Command, what: &str) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e} (run scripts/setup.sh)"));
        Proc(Some(child))
    }

    fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after a few seconds.
    fn terminate(&mut self) {
        if let Some(c) = &mut self.0 {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    self.0 = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn first_existing(candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|c| Path::new(c).exists())
        .unwrap_or(&candidates[0])
        .to_string()
}

/// The `tern-agent` forwarder binary, on a socket and shared-memory file in `dir`.
pub struct Forwarder {
    pub socket: PathBuf,
    pub active: PathBuf,
    pub endpoint: String,
    /// More command-line arguments (`--nice 0`, ...).
    args: Vec<String>,
    proc: Proc,
}

impl Forwarder {
    /// Starts `tern-agent` and waits for its socket.
    pub fn start(dir: &Path, endpoint: &str) -> Forwarder {
        Self::start_with(dir, endpoint, &[])
    }

    /// Starts `tern-agent` with more arguments and waits for its socket.
    pub fn start_with(dir: &Path, endpoint: &str, args: &[String]) -> Forwarder {
        let mut f = Forwarder {
            socket: dir.join("tern-agent.sock"),
            active: dir.join("tern-active"),
            endpoint: endpoint.to_string(),
            args: args.to_vec(),
            proc: Proc(None),
        };
        f.restart();
        f
    }

    /// Starts it again after [`Forwarder::kill`].
    pub fn restart(&mut self) {
        assert!(self.proc.0.is_none(), "already running");
        self.proc = Proc::spawn(
            Command::new(bin_dir().join("tern-agent"))
                .arg("--socket")
                .arg(&self.socket)
                .arg("--active")
                .arg(&self.active)
                .arg("--endpoint")
                .arg(&self.endpoint)
                .args(&self.args)
                .env(
                    "TERN_LOG",
                    std::env::var("TERN_LOG").unwrap_or("warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            "tern-agent",
        );
        let socket = self.socket.clone();
        wait_for("tern-agent's socket", START, || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    /// SIGKILL: the socket file stays behind, as after a crash.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// SIGTERM: the forwarder flushes and removes its socket.
    pub fn stop(&mut self) {
        self.proc.terminate();
    }

    /// The forwarder's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// CPU time (user + system, all threads) the forwarder has used so far, in µs.
    pub fn cpu_us(&self) -> u64 {
        self.proc.pid().map_or(0, cpu_us)
    }
}

/// CPU time (user + system, all threads) process `pid` has used so far, in µs, from
/// `/proc/<pid>/stat` (clock-tick resolution, usually 10 ms); 0 if it is gone.
pub fn cpu_us(pid: u32) -> u64 {
    let (user, system) = cpu_split_us(pid);
    user + system
}

/// User and system CPU time process `pid` has used so far, in µs (see [`cpu_us`]).
pub fn cpu_split_us(pid: u32) -> (u64, u64) {
    // utime and stime are fields 14 and 15.
    let f = crate::bench::stat_fields(pid);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let us = |field: usize| f.get(field - 3).copied().unwrap_or(0) * 1_000_000 / hz;
    (us(14), us(15))
}

/// `pid` and its children (from `/proc/<pid>/task/<pid>/children`): php-fpm's static
/// pool and nginx's workers live as long as their master, so differences of a sum over
/// them across a round are that round's cost.
fn tree(pid: u32) -> impl Iterator<Item = u32> {
    let children: Vec<u32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    std::iter::once(pid).chain(children)
}

/// A MariaDB server in a temporary data directory, with a database `app`.
pub struct MariaDb {
    pub socket: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    proc: Proc,
}

impl MariaDb {
    /// Initialises a data directory with `mariadb-install-db` and starts `mariadbd`.
    pub fn start(dir: &Path) -> MariaDb {
        let data = dir.join("mysql-data");
        let tmp = dir.join("mysql-tmp");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let install = first_existing(&["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"]);
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--user=root")
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--tmpdir={}", tmp.display()))
            .env("TMPDIR", &tmp)
            .output()
            .expect("running mariadb-install-db (run scripts/setup.sh)");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = dir.join("mysql.sock");
        let port = free_port();
        let server = first_existing(&["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]);
        let proc = Proc::spawn(
            Command::new(server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--pid-file={}", dir.join("mysql.pid").display()))
                .arg(format!("--log-error={}", dir.join("mysql.err").display()))
                .arg("--user=root")
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg("--skip-grant-tables")
                .arg("--innodb-buffer-pool-size=32M")
                .arg("--max-connections=500")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "mariadbd",
        );
        let db = MariaDb {
            socket,
            port,
            dir: dir.to_path_buf(),
            proc,
        };
        let sock = db.socket.clone();
        wait_for("mariadbd's socket", START, || sock.exists());
        db.sql("CREATE DATABASE IF NOT EXISTS app");
        db
    }

    /// Runs SQL with the `mariadb` client.
    pub fn sql(&self, sql: &str) {
        let client = first_existing(&["/usr/bin/mariadb", "/usr/bin/mysql"]);
        let mut last = String::new();
        for _ in 0..100 {
            let out = Command::new(&client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket.display()))
                .arg("-uroot")
                .arg("-e")
                .arg(sql)
                .output()
                .expect("running the mariadb client");
            if out.status.success() {
                return;
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mariadb {sql:?} failed: {last}");
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }
}

/// One request as the [`HttpTarget`] saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Requests an [`HttpTarget`] keeps.
const MAX_SEEN: usize = 10_000;

/// A small HTTP/1.1 server on a free port, the target of the app's curl and stream
/// calls: answers `200 hello` (after `?ms=N` milliseconds for `/sleep`), records the
/// path and headers of its first [`MAX_SEEN`] requests.
pub struct HttpTarget {
    pub port: u16,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl HttpTarget {
    /// Starts the server on its own threads (they end with the test process).
    pub fn start() -> HttpTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve_http(stream, &s));
            }
        });
        HttpTarget { port, seen }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_http(stream: TcpStream, seen: &Mutex<Vec<SeenRequest>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut close = line.trim_end().ends_with("HTTP/1.0");
        let mut headers = Vec::new();
        let mut body_len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    body_len = v.parse().unwrap_or(0);
                }
                if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; body_len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Some(ms) = path
            .strip_prefix("/sleep?ms=")
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        // The first requests only: a benchmark sends hundreds of thousands, whose
        // keeping (and the list's regrowth) would slow the target as a run goes on.
        let mut seen = seen.lock().unwrap();
        if seen.len() < MAX_SEEN {
            seen.push(SeenRequest { path, headers });
        }
        drop(seen);
        let connection = if close { "close" } else { "keep-alive" };
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: {connection}\r\n\r\nhello"
        );
        if out.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// How to start php-fpm.
#[derive(Debug, Clone)]
pub struct FpmOptions {
    /// Load `target/debug/libtern.so` (or this file).
    pub extension: Option<PathBuf>,
    /// `-d name=value` settings (the extension's `tern.*` INI lines and any other).
    pub ini: Vec<(String, String)>,
    /// Static pool size.
    pub workers: usize,
    /// A command php-fpm runs under (e.g. `valgrind --tool=callgrind`), empty for none.
    pub launcher: Vec<String>,
}

impl FpmOptions {
    /// The benchmarks' set-up: `extension` loaded as service `bench`, sending to the
    /// forwarder at `socket`, its active-transaction file in `dir`; 4 workers.
    pub fn bench(extension: &Path, dir: &Path, socket: &Path) -> FpmOptions {
        FpmOptions {
            extension: Some(extension.to_path_buf()),
            ini: vec![
                ("tern.service_name".into(), "bench".into()),
                ("tern.socket".into(), socket.display().to_string()),
                (
                    "tern.active_path".into(),
                    dir.join("tern-active").display().to_string(),
                ),
            ],
            ..FpmOptions::default()
        }
    }
}

impl Default for FpmOptions {
    fn default() -> Self {
        FpmOptions {
            extension: None,
            ini: Vec::new(),
            workers: 4,
            launcher: Vec::new(),
        }
    }
}

/// The extension built by `cargo build -p tern-php`, next to the workspace's binaries.
pub fn extension_path() -> PathBuf {
    bin_dir().join("libtern.so")
}

/// The extension a benchmark measures: `TERN_PHP_EXTENSION`, else [`extension_path`].
pub fn bench_extension() -> PathBuf {
    std::env::var("TERN_PHP_EXTENSION")
        .map(PathBuf::from)
        .unwrap_or_else(|_| extension_path())
}

/// A benchmark setting from the environment (`TERN_BENCH_*`), or `default` when unset or
/// unreadable.
pub fn bench_setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// php-fpm (static pool, running as root with `-R`) serving the test app, behind nginx.
pub struct PhpStack {
    pub dir: PathBuf,
    /// nginx's address, `http://127.0.0.1:<port>`.
    pub url: String,
    pub fpm_socket: PathBuf,
    fpm: Proc,
    nginx: Proc,
}

/// What the test app's database and HTTP endpoints talk to: a MariaDB in `dir` and an
/// HTTP target, and the app's environment naming them (`APP_MYSQL_SOCKET`,
/// `APP_TARGET_URL`).
pub struct AppServices {
    pub db: MariaDb,
    pub target: HttpTarget,
    pub env: AppEnv,
}

impl AppServices {
    /// Starts MariaDB (in `dir`) and the HTTP target.
    pub fn start(dir: &Path) -> AppServices {
        let db = MariaDb::start(dir);
        let target = HttpTarget::start();
        let env = AppEnv {
            vars: vec![
                ("APP_MYSQL_SOCKET".into(), db.socket.display().to_string()),
                ("APP_TARGET_URL".into(), target.url()),
            ],
        };
        AppServices { db, target, env }
    }
}

/// What the sequential-request PHP benchmarks (`fpm_cpu`, `fpm_overhead`) share: a
/// temporary directory, a collector with its embedded store, the app's services, and
/// their settings `TERN_BENCH_REQUESTS` (requests per round) and `TERN_BENCH_ROUNDS`.
pub struct BenchBed {
    pub tmp: tempfile::TempDir,
    pub collector: crate::Collector,
    pub services: AppServices,
    pub requests: u64,
    pub rounds: usize,
}

impl BenchBed {
    /// Starts the collector and the app's services; `requests` and `rounds` default to
    /// the given values.
    pub fn start(requests: u64, rounds: usize) -> BenchBed {
        let tmp = tempfile::tempdir().unwrap();
        let collector = crate::Collector::start(crate::StoreMode::Embedded, &[]);
        let services = AppServices::start(tmp.path());
        BenchBed {
            tmp,
            collector,
            services,
            requests: bench_setting("TERN_BENCH_REQUESTS", requests),
            rounds: bench_setting("TERN_BENCH_ROUNDS", rounds),
        }
    }

    /// A directory for the configuration `label`.
    pub fn dir(&self, label: &str) -> PathBuf {
        let dir = self
            .tmp
            .path()
            .join(label.replace(['.', '+', ' ', ',', '='], "-"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs the rounds over `n` configurations, `round(i)` for configuration `i`, each
    /// round starting with the next configuration and every other round going through
    /// them backwards, so that neither a position in the round nor the configuration
    /// run just before (and what it left the machine doing: the collector still storing
    /// its spans, MariaDB flushing its writes) favours one of them.
    pub fn rotated_rounds(&self, n: usize, mut round: impl FnMut(usize)) {
        for r in 0..self.rounds {
            for k in 0..n {
                let k = if r % 2 == 1 { n - 1 - k } else { k };
                round((r + k) % n);
            }
        }
    }
}

/// Values the test app reads from `$_SERVER` (set as FastCGI parameters by nginx).
#[derive(Debug, Clone, Default)]
pub struct AppEnv {
    pub vars: Vec<(String, String)>,
}

impl PhpStack {
    /// Starts php-fpm and nginx serving `app_dir/index.php` for every path.
    pub fn start(dir: &Path, app_dir: &Path, options: &FpmOptions, env: &AppEnv) -> PhpStack {
        let fpm_socket = dir.join("php-fpm.sock");
        let conf = dir.join("php-fpm.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\npid = {dir}/php-fpm.pid\nerror_log = {dir}/php-fpm.log\ndaemonize = no\n\
                 [app]\nuser = root\ngroup = root\nlisten = {sock}\nlisten.mode = 0666\n\
                 pm = static\npm.max_children = {workers}\npm.max_requests = 0\n\
                 catch_workers_output = yes\nclear_env = no\n",
                dir = dir.display(),
                sock = fpm_socket.display(),
                workers = options.workers,
            ),
        )
        .unwrap();
        let fpm_bin = first_existing(&["/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm"]);
        let mut cmd = match options.launcher.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(fpm_bin);
                c
            }
            None => Command::new(fpm_bin),
        };
        cmd.arg("-F").arg("-R").arg("-y").arg(&conf);
        if let Some(ext) = &options.extension {
            assert!(
                ext.exists(),
                "{} missing: cargo build -p tern-php",
                ext.display()
            );
            cmd.arg("-d").arg(format!("extension={}", ext.display()));
        }
        for (k, v) in &options.ini {
            cmd.arg("-d").arg(format!("{k}={v}"));
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        let fpm = Proc::spawn(&mut cmd, "php-fpm8.2");
        let sock = fpm_socket.clone();
        wait_for("php-fpm's socket", START, || sock.exists());

        let port = free_port();
        let params: String = env
            .vars
            .iter()
            .map(|(k, v)| format!("      fastcgi_param {k} \"{v}\";\n"))
            .collect();
        std::fs::create_dir_all(dir.join("nginx-tmp")).unwrap();
        let nginx_conf = dir.join("nginx.conf");
        std::fs::write(
            &nginx_conf,
            format!(
                "user root;\nworker_processes 1;\ndaemon off;\npid {dir}/nginx.pid;\n\
                 error_log {dir}/nginx-error.log warn;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {dir}/nginx-tmp/body;\n\
                 fastcgi_temp_path {dir}/nginx-tmp/fastcgi;\n  proxy_temp_path {dir}/nginx-tmp/proxy;\n\
                 uwsgi_temp_path {dir}/nginx-tmp/uwsgi;\n  scgi_temp_path {dir}/nginx-tmp/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {app};\n    location / {{\n\
                       include /etc/nginx/fastcgi_params;\n\
                       fastcgi_param SCRIPT_FILENAME {app}/index.php;\n\
                       fastcgi_param SCRIPT_NAME /index.php;\n\
                       fastcgi_param APP_SELF_URL \"http://127.0.0.1:{port}\";\n{params}\
                       fastcgi_pass unix:{sock};\n    }}\n  }}\n}}\n",
                dir = dir.display(),
                app = app_dir.display(),
                sock = fpm_socket.display(),
            ),
        )
        .unwrap();
        let nginx = Proc::spawn(
            Command::new("/usr/sbin/nginx")
                .arg("-c")
                .arg(&nginx_conf)
                .arg("-p")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            "nginx",
        );
        let url = format!("http://127.0.0.1:{port}");
        let health = format!("{url}/hello");
        wait_for("nginx → php-fpm to answer", START, || {
            reqwest::blocking::get(&health).is_ok_and(|r| r.status().is_success())
        });
        PhpStack {
            dir: dir.to_path_buf(),
            url,
            fpm_socket,
            fpm,
            nginx,
        }
    }

    /// GET `path` through nginx: status and body (status 0 when nothing answered).
    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_with(path, &[])
    }

    /// GET with extra request headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send() {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        }
    }

    /// The php-fpm worker processes (children of the master) and their resident memory
    /// in KiB, from `/proc`.
    pub fn worker_rss_kib(&self) -> Vec<(u32, u64)> {
        let Some(master) = self.fpm.pid() else {
            return Vec::new();
        };
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let rss = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some((pid, rss))
            })
            .collect()
    }

    /// CPU time used so far by php-fpm (master and pool workers), in µs.
    pub fn fpm_cpu_us(&self) -> u64 {
        self.fpm.pid().map_or(0, tree_cpu_us)
    }

    /// CPU time used so far by php-fpm (master and pool workers), in ns, exact (see
    /// [`crate::bench::run_ns`]).
    pub fn fpm_run_ns(&self) -> u64 {
        self.fpm
            .pid()
            .map_or(0, |pid| tree(pid).map(crate::bench::run_ns).sum())
    }

    /// Minor page faults and context switches of php-fpm (master and pool workers) so
    /// far.
    pub fn fpm_faults_and_switches(&self) -> (u64, u64) {
        self.fpm.pid().map_or((0, 0), |pid| {
            tree(pid)
                .map(crate::bench::faults_and_switches)
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        })
    }

    /// User CPU time used so far by php-fpm (master and pool workers), in µs.
    pub fn fpm_user_us(&self) -> u64 {
        self.fpm_user_sys_us().0
    }

    /// User and system CPU time used so far by php-fpm (master and pool workers), in µs
    /// (clock ticks: meaningful over seconds of CPU).
    pub fn fpm_user_sys_us(&self) -> (u64, u64) {
        self.fpm.pid().map_or((0, 0), tree_cpu_split_us)
    }

    /// CPU time used so far by nginx (master and workers), in µs.
    pub fn nginx_cpu_us(&self) -> u64 {
        self.nginx.pid().map_or(0, tree_cpu_us)
    }

    /// php-fpm's log (warnings of workers, INI warnings).
    pub fn fpm_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("php-fpm.log")).unwrap_or_default()
    }
}

/// CPU µs of `pid` and its children (see [`tree`]).
fn tree_cpu_us(pid: u32) -> u64 {
    let (user, system) = tree_cpu_split_us(pid);
    user + system
}

/// User and system CPU µs of `pid` and its children.
fn tree_cpu_split_us(pid: u32) -> (u64, u64) {
    tree(pid)
        .map(cpu_split_us)
        .fold((0, 0), |(u, s), (pu, ps)| (u + pu, s + ps))
}

impl Drop for PhpStack {
    fn drop(&mut self) {
        self.nginx.terminate();
        self.fpm.terminate();
    }
}
