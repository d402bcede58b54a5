use super::*;

#[test]
fn api_base_is_normalised_and_checked() {
    let ok = |s: &str| s.parse::<ApiBase>().unwrap().to_string();
    assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    assert_eq!(ok("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    assert_eq!(ok("127.0.0.1:8080"), "http://127.0.0.1:8080");
    assert_eq!(ok("http://[::1]:8080"), "http://[::1]:8080");
    assert_eq!(ok("http://switch/telegen/"), "http://switch/telegen");
    assert_eq!(ok("https://switch:8443/"), "https://switch:8443");
    assert_eq!(
        "http://switch/telegen/"
            .parse::<ApiBase>()
            .unwrap()
            .join("/jobs"),
        "http://switch/telegen/jobs"
    );
    for (bad, needle) in [
        ("ftp://x", "only http:// and https://"),
        ("http://", "not a URL"),
        ("http://u:p@h:1", "credentials"),
        ("http://h:1/?a=b", "query"),
        ("http://h:1/#x", "fragment"),
        ("not a url", "not a URL"),
    ] {
        let e = bad.parse::<ApiBase>().expect_err(bad);
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

/// A one-shot HTTP server on loopback: returns its base URL and a handle
/// yielding the raw request it received; it answers `reply` (or nothing
/// when `reply` is None, keeping the connection open until dropped).
fn one_shot(reply: Option<&'static str>) -> (ApiBase, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap())
        .parse()
        .unwrap();
    let h = std::thread::spawn(move || {
        let (stream, _) = l.accept().unwrap();
        let mut r = BufReader::new(stream);
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        head.push_str(&String::from_utf8(body).unwrap());
        match reply {
            Some(reply) => r.get_mut().write_all(reply.as_bytes()).unwrap(),
            // Hold the connection without answering until the client gives up.
            None => {
                let _ = r.read(&mut [0; 1]);
            }
        }
        head
    });
    (base, h)
}

#[test]
fn sends_token_and_json_and_reads_any_status() {
    let (base, h) = one_shot(Some(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: 19\r\nconnection: close\r\n\r\n{\"error\":\"limit\"}  ",
    ));
    let t = HttpTransport::new(base, Some("tok123".into()), Duration::from_secs(5));
    let reply = t
        .send(Method::Post, "/jobs/start", Some(r#"{"port":"e0"}"#))
        .unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.body, r#"{"error":"limit"}  "#);
    let req = h.join().unwrap().to_ascii_lowercase();
    assert!(req.starts_with("post /jobs/start http/1.1\r\n"), "{req}");
    assert!(
        req.contains("\r\nauthorization: bearer tok123\r\n"),
        "{req}"
    );
    assert!(
        req.contains("\r\ncontent-type: application/json\r\n"),
        "{req}"
    );
    assert!(req.ends_with(r#"{"port":"e0"}"#), "{req}");
}

#[test]
fn no_token_no_header_and_an_empty_token_is_none() {
    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    for token in [None, Some(String::new())] {
        let (base, h) = one_shot(Some(ok));
        let t = HttpTransport::new(base, token, Duration::from_secs(5));
        assert_eq!(
            t.send(Method::Get, "/jobs/a%2Fb", None).unwrap().status,
            200
        );
        let req = h.join().unwrap().to_ascii_lowercase();
        assert!(req.starts_with("get /jobs/a%2fb http/1.1\r\n"), "{req}");
        assert!(!req.contains("authorization"), "{req}");
    }
}

#[test]
fn a_silent_gateway_times_out_as_unreachable() {
    let (base, h) = one_shot(None);
    let t = HttpTransport::new(base, None, Duration::from_millis(300));
    let e = t.send(Method::Get, "/jobs", None).unwrap_err();
    assert_eq!(
        e,
        TransportError::Unreachable("no answer within 0.3 s".into())
    );
    drop(t);
    h.join().unwrap();
}

#[test]
fn durations_read_well() {
    assert_eq!(human_duration(Duration::from_secs(10)), "10 s");
    assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
}
