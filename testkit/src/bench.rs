//! Small helpers the benchmarks share.

/// Nanoseconds thread or process `id` has spent on a CPU (user and system), from
/// `/proc/<id>/schedstat` (exact, unlike the tick-counted times of `/proc/<id>/stat`);
/// 0 when unreadable.
pub fn run_ns(id: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{id}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The numeric fields of `/proc/<id>/stat` after the command name (which may hold
/// spaces), numbered from the line's field 3 (`state`, not a number: 0) on, so field
/// `k` of proc(5) is at `k - 3`; empty when the process is gone.
pub fn stat_fields(id: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect()
}

/// Minor page faults and context switches (voluntary + involuntary) of process `id` so
/// far (`/proc/<id>/stat`, `/proc/<id>/status`); zeros when it is gone.
pub fn faults_and_switches(id: u32) -> (u64, u64) {
    // `minflt` is field 10.
    let faults = stat_fields(id).get(10 - 3).copied().unwrap_or(0);
    let switches = std::fs::read_to_string(format!("/proc/{id}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    (faults, switches)
}

/// The median over rounds of `f(round, base round)`, each round of a configuration taken
/// with the baseline's round of the same cycle (run minutes apart at most), so what the
/// machine's slow and fast spells move cancels out.
pub fn paired_median<T>(rounds: &[T], base: &[T], f: impl Fn(&T, &T) -> f64) -> f64 {
    median(rounds.iter().zip(base).map(|(r, b)| f(r, b)).collect())
}

/// The median of some measurements (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median of `v` with its 95 % confidence interval, distribution-free (the order
/// statistics `n/2 ∓ 1.96·√n/2` of the sorted values): (low, median, high); NaNs for
/// fewer than 6 values, where no such interval exists.
pub fn median_ci(mut v: Vec<f64>) -> (f64, f64, f64) {
    let n = v.len();
    if n < 6 {
        return (f64::NAN, median(v), f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let half = 1.96 * (n as f64).sqrt() / 2.0;
    let lo = ((n as f64 / 2.0 - half).floor() as usize).min(n - 1);
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    (v[lo], v[n / 2], v[hi])
}

/// The mean of `v` without its lowest and highest `share` (0.1: a tenth at each end).
pub fn trimmed_mean(mut v: Vec<f64>, share: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let cut = (v.len() as f64 * share) as usize;
    let kept = &v[cut..v.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// One HTTP/1.1 connection kept open for a run of GET requests, timed from the request's
/// first byte written to the response's last byte read (no client library, runtime or
/// thread in between: what it adds is the same few microseconds for every server it is
/// pointed at). Reconnects when the server closed the connection.
pub struct KeepAlive {
    addr: String,
    conn: Option<std::io::BufReader<std::net::TcpStream>>,
}

impl KeepAlive {
    /// A client of `url` (`http://host:port`, no path).
    pub fn new(url: &str) -> KeepAlive {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        KeepAlive {
            addr: addr.to_string(),
            conn: None,
        }
    }

    /// GETs `path`: the status and the time it took; panics on a broken response (a
    /// benchmark must not count one).
    pub fn get(&mut self, path: &str) -> (u16, std::time::Duration) {
        for attempt in 0..2 {
            if self.conn.is_none() {
                let s = std::net::TcpStream::connect(&self.addr).expect("connecting");
                s.set_nodelay(true).unwrap();
                self.conn = Some(std::io::BufReader::new(s));
            }
            let started = std::time::Instant::now();
            let mut answered = false;
            match self.exchange(path, &mut answered) {
                Ok((status, close)) => {
                    let took = started.elapsed();
                    if close {
                        self.conn = None;
                    }
                    return (status, took);
                }
                // The server had closed the idle connection before answering: once more
                // on a new one. Anything else (a response cut short or malformed) is a
                // broken response, never retried.
                Err(e)
                    if attempt == 0
                        && !answered
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::BrokenPipe
                        ) =>
                {
                    self.conn = None
                }
                Err(e) => panic!("GET {path} on {}: {e}", self.addr),
            }
        }
        unreachable!()
    }

    /// Writes the request and reads the whole response: (status, server closes);
    /// `answered` is set once a byte of the response has arrived.
    fn exchange(&mut self, path: &str, answered: &mut bool) -> std::io::Result<(u16, bool)> {
        use std::io::{BufRead, Error, Read, Write};
        let conn = self.conn.as_mut().expect("connected");
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        conn.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        let read_line = |conn: &mut std::io::BufReader<_>, line: &mut String| {
            line.clear();
            match conn.read_line(line)? {
                0 => Err(Error::new(std::io::ErrorKind::UnexpectedEof, "closed")),
                _ => Ok(()),
            }
        };
        read_line(conn, &mut line)?;
        *answered = true;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::other(format!("bad status line {line:?}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            read_line(conn, &mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        // Reads and drops `n` bytes; fewer before the end of the stream is an error.
        let skip = |conn: &mut std::io::BufReader<_>, n: usize| {
            let got = std::io::copy(&mut conn.take(n as u64), &mut std::io::sink())?;
            if got == n as u64 {
                Ok(())
            } else {
                Err(Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ))
            }
        };
        if chunked {
            loop {
                read_line(conn, &mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| Error::other(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    // Trailer lines, if any, up to the empty line that ends the body.
                    loop {
                        read_line(conn, &mut line)?;
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                // The chunk and its CRLF.
                skip(conn, size + 2)?;
            }
        } else if let Some(n) = length {
            skip(conn, n)?;
        } else {
            // Neither: the body runs until the server closes.
            std::io::copy(conn, &mut std::io::sink())?;
            close = true;
        }
        Ok((status, close))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    #[test]
    fn the_median_interval_holds_the_middle_order_statistics() {
        let v: Vec<f64> = (0..100).rev().map(f64::from).collect();
        // n = 100: ranks 50 ∓ 9.8 (0-based), so the 41st and the 61st values around the
        // 51st (the upper median).
        assert_eq!(median_ci(v), (40.0, 50.0, 60.0));
        let (lo, mid, hi) = median_ci(vec![1.0, 2.0, 3.0]);
        assert!(lo.is_nan() && hi.is_nan());
        assert_eq!(mid, 2.0);
    }

    #[test]
    fn the_trimmed_mean_drops_both_ends() {
        let mut v: Vec<f64> = vec![10.0; 8];
        v.push(-1000.0);
        v.push(1e9);
        assert_eq!(trimmed_mean(v, 0.1), 10.0);
    }

    /// A server answering each request on one connection with `replies` in turn.
    fn serve(replies: Vec<&'static str>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            for reply in replies {
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    line.clear();
                }
                out.write_all(reply.as_bytes()).unwrap();
            }
        });
        url
    }

    #[test]
    fn a_kept_alive_connection_reads_each_kind_of_body_whole() {
        let url = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n",
            "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        ]);
        let mut client = KeepAlive::new(&url);
        // Each status is the next reply's: a body left unread would be taken for the
        // next status line.
        assert_eq!(client.get("/a").0, 200);
        assert_eq!(client.get("/b").0, 404);
        assert_eq!(client.get("/c").0, 201);
    }

    #[test]
    #[should_panic(expected = "body cut short")]
    fn a_body_cut_short_is_a_broken_response() {
        let url = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello"]);
        KeepAlive::new(&url).get("/a");
    }
}
