//! A registry that serves fixed responses on a free loopback port, for faults a real
//! registry cannot produce: a blob whose bytes do not match its digest, or whose length
//! does not match its descriptor.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

/// The response the server sends for one path.
#[derive(Clone)]
pub struct Route {
    pub content_type: String,
    /// Sent as `Docker-Content-Digest` when set.
    pub digest: Option<String>,
    pub body: Vec<u8>,
}

pub struct FakeRegistry {
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl FakeRegistry {
    /// Serves `routes`, keyed by request path, from a background thread that lives as long
    /// as the test process. `GET /v2/` returns 200 so that clients request no token.
    pub fn start(routes: HashMap<String, Route>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let routes = Arc::new(routes);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let routes = routes.clone();
                thread::spawn(move || serve(stream, &routes));
            }
        });
        FakeRegistry { address }
    }
}

fn serve(stream: TcpStream, routes: &HashMap<String, Route>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Skip the request headers; these requests have no body.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
        let response = respond(method, path, routes);
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

fn respond(method: &str, path: &str, routes: &HashMap<String, Route>) -> Vec<u8> {
    let (status, content_type, digest, body) = match routes.get(path) {
        _ if path == "/v2/" || path == "/v2" => {
            ("200 OK", "application/json", None, b"{}".to_vec())
        }
        Some(route) => (
            "200 OK",
            route.content_type.as_str(),
            route.digest.clone(),
            route.body.clone(),
        ),
        None => (
            "404 Not Found",
            "application/json",
            None,
            br#"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#.to_vec(),
        ),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(digest) = digest {
        head.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    if method != "HEAD" {
        response.extend(body);
    }
    response
}
