//! Fake components and a tiny blocking HTTP/1.1 client for the tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tta_health::{ComponentHealth, HealthComponent};

/// A component whose health and status document the test sets.
pub(crate) struct Fake {
    name: String,
    health: Mutex<ComponentHealth>,
    document: Mutex<Value>,
}

impl Fake {
    pub(crate) fn new(name: &str, health: ComponentHealth) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            health: Mutex::new(health),
            document: Mutex::new(json!({ "component": name })),
        })
    }

    pub(crate) fn set(&self, health: ComponentHealth) {
        *self.health.lock().unwrap() = health;
    }

    #[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests change documents
    pub(crate) fn set_document(&self, document: Value) {
        *self.document.lock().unwrap() = document;
    }
}

impl HealthComponent for Fake {
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> ComponentHealth {
        self.health.lock().unwrap().clone()
    }
    fn status_document(&self) -> Value {
        self.document.lock().unwrap().clone()
    }
}

/// One HTTP response.
#[derive(Debug)]
#[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests read responses
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

#[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests use the client
impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Opens a connection with generous timeouts (a deadline, not a sleep).
#[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests use the client
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends one request on a new connection (`Connection: close`) and reads the response.
#[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests use the client
pub(crate) fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = connect(addr);
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, method == "HEAD")
}

/// Reads one response: status line, headers, and a body framed by `Content-Length`,
/// chunked encoding, or the end of the stream.
#[cfg_attr(not(feature = "http"), allow(dead_code))] // only the HTTP tests use the client
pub(crate) fn read_response(reader: &mut BufReader<TcpStream>, head: bool) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.trim_end().splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
    let status: u16 = parts.next().unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head {
        return reply;
    }
    if let Some(len) = reply.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
        reply.body = body;
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut reply.body).unwrap();
    }
    reply
}
