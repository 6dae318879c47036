//! A minimal OTLP/HTTP receiver on 127.0.0.1 for the tests: parses HTTP/1.1 requests
//! (keep-alive, Content-Length bodies) and answers with scripted statuses.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, gunzipped if it says so.
    pub(crate) fn decoded_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("valid gzip");
            out
        } else {
            self.body.clone()
        }
    }
}

/// A scripted answer: status and optional `Retry-After` seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer(pub(crate) u16, pub(crate) Option<u64>);

pub(crate) struct Receiver {
    pub(crate) addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts a receiver; answers come from `script` in order, then 200.
    pub(crate) fn start(script: &[Answer]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, script) = (Arc::clone(&requests), Arc::clone(&script));
                            std::thread::spawn(move || serve(stream, &requests, &script));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            });
        }
        Self {
            addr,
            requests,
            stop,
        }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub(crate) fn wait_for(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} requests",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Request>>, script: &Mutex<VecDeque<Answer>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
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
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.lock().unwrap().push(Request {
            method,
            path,
            headers,
            body,
        });
        let Answer(status, retry_after) = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer(200, None));
        let mut resp = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n");
        if let Some(s) = retry_after {
            resp.push_str(&format!("retry-after: {s}\r\n"));
        }
        resp.push_str("\r\n");
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// An address on 127.0.0.1 where nothing listens.
pub(crate) fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
