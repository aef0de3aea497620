//! Reading tickwire's Prometheus endpoint as a test sees it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET /metrics` on 127.0.0.1:`port`: every `tickwire_` sample line,
/// `name{labels}` -> value. Panics (failing the test) when the endpoint does
/// not answer 200.
pub fn scrape(port: u16) -> HashMap<String, f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the metrics endpoint listens");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout can be set");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("the reply is read");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body.lines()
        .filter(|l| l.starts_with("tickwire_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// [`scrape`], or nothing while the endpoint does not listen yet.
pub fn try_scrape(port: u16) -> HashMap<String, f64> {
    match TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => scrape(port),
        Err(_) => HashMap::new(),
    }
}
