//! Fetch tests against a tiny HTTP server on 127.0.0.1.
//!
//! The server listens on an ephemeral port, so every test that expects a
//! request to reach it uses a policy that exempts exactly `127.0.0.1` and that
//! port (`allow_addresses` / `allow_ports`, empty by default). Redirect
//! targets such as `169.254.169.254` and `10.0.0.1` are refused before any
//! connection is attempted, so no traffic ever leaves this machine.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use importer::guard::BoxFuture;
use importer::{
    fetch_page, fetch_page_with_resolver, import_page_with_resolver, FetchPolicy, ImportError,
    RefusedClass, Resolver, StaticResolver,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct TestServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl TestServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (c, h) = (connections.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(sock, port, h.clone()));
            }
        });
        Self {
            port,
            connections,
            hits,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A policy that lets requests reach this server (and nothing else
    /// private): tests only.
    fn policy(&self) -> FetchPolicy {
        FetchPolicy {
            allow_addresses: vec![LOCALHOST],
            allow_ports: vec![self.port],
            timeout: Duration::from_secs(3),
            ..FetchPolicy::default()
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn html(body: &str) -> Vec<u8> {
    response(
        "200 OK",
        &[("Content-Type", "text/html; charset=utf-8".into())],
        body.as_bytes(),
    )
}

fn redirect(status: &str, location: &str) -> Vec<u8> {
    response(status, &[("Location", location.to_string())], b"")
}

const PAGE: &str = r#"<!doctype html><html><head>
<meta property="og:title" content="Test Concert">
<meta property="og:image" content="/poster.jpg">
</head><body><p>티켓오픈 2025.03.05(수) 20:00</p></body></html>"#;

async fn handle(mut sock: TcpStream, port: u16, hits: Arc<Mutex<HashMap<String, usize>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return;
        }
    }
    let request = String::from_utf8_lossy(&buf).into_owned();
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let host = request
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    *hits.lock().expect("lock").entry(path.clone()).or_insert(0) += 1;

    let reply = match path.as_str() {
        "/page" => html(PAGE),
        "/echo-host" => html(&format!("<title>host={host}</title>")),
        "/redirect-once" => redirect("302 Found", "/page"),
        "/chain3" => redirect("301 Moved Permanently", "/chain2"),
        "/chain2" => redirect("307 Temporary Redirect", &format!("http://127.0.0.1:{port}/chain1")),
        "/chain1" => redirect("308 Permanent Redirect", "page"),
        "/loop" => redirect("302 Found", "/loop"),
        "/to-metadata" => redirect("302 Found", "http://169.254.169.254/latest/meta-data/"),
        "/to-private" => redirect("301 Moved Permanently", "http://10.0.0.1/"),
        "/to-mapped" => redirect("302 Found", "http://[::ffff:192.168.0.1]/"),
        "/to-internal-name" => redirect("307 Temporary Redirect", "http://internal.example/admin"),
        "/to-file" => redirect("302 Found", "file:///etc/passwd"),
        "/to-bad-port" => redirect("302 Found", "http://127.0.0.1:6379/"),
        "/to-userinfo" => redirect("302 Found", "http://user:pw@example.com/"),
        "/no-location" => response("302 Found", &[], b""),
        "/json" => response(
            "200 OK",
            &[("Content-Type", "application/json".into())],
            b"{\"@type\":\"Event\"}",
        ),
        "/no-content-type" => response("200 OK", &[], b"<html><title>x</title></html>"),
        "/xhtml" => response(
            "200 OK",
            &[("Content-Type", "application/xhtml+xml".into())],
            b"<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>XHTML</title></head></html>",
        ),
        "/euc-kr" => {
            let (bytes, _, _) = encoding_rs::EUC_KR
                .encode("<html><head><title>아이유 콘서트</title></head><body>예매오픈 3월 5일 20시</body></html>");
            response(
                "200 OK",
                &[("Content-Type", "text/html; charset=EUC-KR".into())],
                &bytes,
            )
        }
        "/not-found" => response(
            "404 Not Found",
            &[("Content-Type", "text/html".into())],
            b"<h1>404</h1>",
        ),
        "/server-error" => response(
            "503 Service Unavailable",
            &[("Content-Type", "text/html".into())],
            b"busy",
        ),
        "/big-streamed" => {
            // No Content-Length: the client must count while streaming.
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'a'; 4096];
            for _ in 0..64 {
                if sock.write_all(&block).await.is_err() {
                    return; // the client hung up, as it should
                }
            }
            let _ = sock.shutdown().await;
            return;
        }
        "/big-declared" => response(
            "200 OK",
            &[
                ("Content-Type", "text/html".into()),
                ("Content-Length", "10000000".into()),
            ],
            b"<html>",
        ),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        "/slow-body" => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html>";
            let _ = sock.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        _ => response("404 Not Found", &[("Content-Type", "text/plain".into())], b""),
    };
    let _ = sock.write_all(&reply).await;
    let _ = sock.shutdown().await;
}

fn assert_refused(err: &ImportError, class: RefusedClass) {
    match err {
        ImportError::RefusedAddress { class: c, .. } => assert_eq!(*c, class, "{err:?}"),
        other => panic!("expected a refused {class:?} address, got {other:?}"),
    }
    assert_eq!(err.status(), 422);
    assert_eq!(err.code(), "IMPORT_REFUSED");
}

// --- refused before connecting -------------------------------------------

#[tokio::test]
async fn default_policy_refuses_the_local_server() {
    let server = TestServer::start().await;
    // The plain default policy: the ephemeral port alone is refused (400).
    let err = fetch_page(&server.url("/page"), &FetchPolicy::default())
        .await
        .expect_err("refused");
    assert_eq!(err, ImportError::BadPort(server.port));
    assert_eq!(
        (err.status(), err.code(), err.field()),
        (400, "VALIDATION_FAILED", Some("url"))
    );

    // Even with the port allowed, the loopback address is refused (422).
    let policy = FetchPolicy {
        allow_ports: vec![server.port],
        ..FetchPolicy::default()
    };
    let err = fetch_page(&server.url("/page"), &policy)
        .await
        .expect_err("refused");
    assert_refused(&err, RefusedClass::Loopback);
    assert!(
        err.message()
            .contains("the address 127.0.0.1 is a loopback address"),
        "{}",
        err.message()
    );
    assert_eq!(server.connections(), 0, "nothing may connect");
}

#[tokio::test]
async fn numeric_loopback_spellings_are_refused() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        allow_ports: vec![server.port],
        ..FetchPolicy::default()
    };
    let port = server.port;
    for host in [
        "0x7f000001",
        "2130706433",
        "017700000001",
        "127.1",
        "127.0.1",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[::1]",
    ] {
        let url = format!("http://{host}:{port}/page");
        let err = fetch_page(&url, &policy).await.expect_err(&url);
        assert_refused(&err, RefusedClass::Loopback);
    }
    for url in ["http://0.0.0.0/", "http://0/", "http://[::]/"] {
        let err = fetch_page(url, &FetchPolicy::default())
            .await
            .expect_err(url);
        assert_refused(&err, RefusedClass::Unspecified);
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn localhost_name_is_refused() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        allow_ports: vec![server.port],
        ..FetchPolicy::default()
    };
    let url = format!("http://localhost:{}/page", server.port);
    let err = fetch_page(&url, &policy).await.expect_err("localhost");
    assert_refused(&err, RefusedClass::Loopback);
    assert!(
        err.message().contains("localhost resolves to"),
        "{}",
        err.message()
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn name_resolving_to_loopback_is_refused() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        allow_ports: vec![server.port],
        ..FetchPolicy::default()
    };
    let resolver = StaticResolver::new()
        .with("public.example", &[LOCALHOST])
        .with(
            "sneaky.example",
            &["93.184.215.14".parse().expect("ip"), LOCALHOST],
        );
    let url = format!("http://public.example:{}/page", server.port);
    let err = fetch_page_with_resolver(&url, &policy, &resolver)
        .await
        .expect_err("refused");
    assert_refused(&err, RefusedClass::Loopback);
    assert_eq!(
        err.message(),
        "refused: public.example resolves to a forbidden address: \
         the address 127.0.0.1 is a loopback address"
    );
    // One bad address among good ones is enough to refuse.
    let url = format!("http://sneaky.example:{}/page", server.port);
    let err = fetch_page_with_resolver(&url, &policy, &resolver)
        .await
        .expect_err("refused");
    assert_refused(&err, RefusedClass::Loopback);
    assert_eq!(server.connections(), 0);
}

// --- successful fetches ----------------------------------------------------

#[tokio::test]
async fn html_page_through_one_redirect() {
    let server = TestServer::start().await;
    let page = fetch_page(&server.url("/redirect-once"), &server.policy())
        .await
        .expect("fetched");
    assert_eq!(page.final_url.as_str(), server.url("/page"));
    assert!(page.html.contains("Test Concert"));
    assert_eq!(server.hits("/redirect-once"), 1);
    assert_eq!(server.hits("/page"), 1);

    // The whole pipeline: fetch, parse (relative image against the final
    // URL, open time from the text), template.
    let now = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("now")
        .with_timezone(&chrono::Utc);
    let imported = import_page_with_resolver(
        &server.url("/redirect-once"),
        &server.policy(),
        &StaticResolver::new(),
        now,
    )
    .await
    .expect("imported");
    assert_eq!(imported.template, "default");
    assert_eq!(imported.parsed.title.as_deref(), Some("Test Concert"));
    assert_eq!(
        imported.parsed.image_url.as_deref(),
        Some(server.url("/poster.jpg").as_str())
    );
    assert_eq!(
        imported.parsed.opens_at.map(|t| t.to_rfc3339()),
        Some("2025-03-05T11:00:00+00:00".to_string())
    );
}

#[tokio::test]
async fn exactly_max_redirects_is_fine() {
    let server = TestServer::start().await;
    let page = fetch_page(&server.url("/chain3"), &server.policy())
        .await
        .expect("three redirects are allowed");
    assert_eq!(page.final_url.as_str(), server.url("/page"));
}

#[tokio::test]
async fn name_is_pinned_to_the_checked_address() {
    /// Answers 127.0.0.1 once, then (as a rebinding attacker would) a
    /// different address; counts the lookups.
    struct Rebinding {
        calls: AtomicUsize,
    }
    impl Resolver for Rebinding {
        fn resolve<'a>(
            &'a self,
            _host: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let ip = if n == 0 {
                LOCALHOST
            } else {
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
            };
            Box::pin(async move { Ok(vec![ip]) })
        }
    }
    let server = TestServer::start().await;
    let resolver = Rebinding {
        calls: AtomicUsize::new(0),
    };
    let url = format!("http://rebind.example:{}/echo-host", server.port);
    let page = fetch_page_with_resolver(&url, &server.policy(), &resolver)
        .await
        .expect("fetched");
    // One lookup (ours); the HTTP client never resolved the name itself (the
    // name does not exist in real DNS, and a second lookup would have
    // returned the unchecked 127.0.0.2).
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
    // The request carried the original host name.
    assert!(
        page.html
            .contains(&format!("host=rebind.example:{}", server.port)),
        "{}",
        page.html
    );
    assert_eq!(page.final_url.host_str(), Some("rebind.example"));
}

#[tokio::test]
async fn xhtml_and_euc_kr_are_accepted() {
    let server = TestServer::start().await;
    let page = fetch_page(&server.url("/xhtml"), &server.policy())
        .await
        .expect("xhtml");
    assert!(page.html.contains("XHTML"));
    let page = fetch_page(&server.url("/euc-kr"), &server.policy())
        .await
        .expect("euc-kr");
    assert!(page.html.contains("아이유 콘서트"), "{}", page.html);
    assert!(page.html.contains("예매오픈"));
}

// --- refused through a redirect -------------------------------------------

#[tokio::test]
async fn redirect_to_refused_addresses() {
    let server = TestServer::start().await;
    let resolver =
        StaticResolver::new().with("internal.example", &["10.1.2.3".parse().expect("ip")]);
    let cases = [
        (
            "/to-metadata",
            RefusedClass::CloudMetadata,
            "169.254.169.254",
        ),
        ("/to-private", RefusedClass::Private, "10.0.0.1"),
        ("/to-mapped", RefusedClass::Private, "192.168.0.1"),
        ("/to-internal-name", RefusedClass::Private, "10.1.2.3"),
    ];
    for (path, class, addr) in cases {
        let err = fetch_page_with_resolver(&server.url(path), &server.policy(), &resolver)
            .await
            .expect_err(path);
        assert_refused(&err, class);
        assert!(
            matches!(
                err,
                ImportError::RefusedAddress {
                    via_redirect: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.message();
        assert!(msg.contains("redirected"), "{msg}");
        assert!(msg.contains(addr), "{msg}");
        assert_eq!(server.hits(path), 1, "the first hop was fetched");
    }
    let msg = fetch_page(&server.url("/to-metadata"), &server.policy())
        .await
        .expect_err("metadata")
        .message();
    assert!(msg.contains("is a cloud metadata service address"), "{msg}");
}

#[tokio::test]
async fn metadata_is_refused_even_with_allow_private() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        allow_private: true,
        allow_ports: vec![server.port],
        timeout: Duration::from_secs(3),
        ..FetchPolicy::default()
    };
    // allow_private lets the first hop (127.0.0.1) through…
    fetch_page(&server.url("/page"), &policy)
        .await
        .expect("allowed");
    // …but never a metadata endpoint.
    let err = fetch_page(&server.url("/to-metadata"), &policy)
        .await
        .expect_err("metadata");
    assert_refused(&err, RefusedClass::CloudMetadata);
}

#[tokio::test]
async fn redirect_to_refused_urls() {
    let server = TestServer::start().await;
    for path in ["/to-file", "/to-bad-port", "/to-userinfo"] {
        let err = fetch_page(&server.url(path), &server.policy())
            .await
            .expect_err(path);
        assert!(
            matches!(err, ImportError::RefusedRedirect { .. }),
            "{path}: {err:?}"
        );
        assert_eq!(
            (err.status(), err.code()),
            (422, "IMPORT_REFUSED"),
            "{path}"
        );
    }
}

// --- failures ---------------------------------------------------------------

fn assert_failed(err: &ImportError) {
    assert_eq!(err.status(), 422, "{err:?}");
    assert_eq!(err.code(), "IMPORT_FAILED", "{err:?}");
    assert!(!err.message().is_empty());
}

#[tokio::test]
async fn too_many_redirects() {
    let server = TestServer::start().await;
    let err = fetch_page(&server.url("/loop"), &server.policy())
        .await
        .expect_err("loop");
    assert_eq!(err, ImportError::TooManyRedirects { max: 3 });
    assert_failed(&err);
    assert_eq!(server.hits("/loop"), 4, "the first request and 3 redirects");

    let policy = FetchPolicy {
        max_redirects: 0,
        ..server.policy()
    };
    let err = fetch_page(&server.url("/redirect-once"), &policy)
        .await
        .expect_err("no redirects allowed");
    assert_eq!(err, ImportError::TooManyRedirects { max: 0 });
}

#[tokio::test]
async fn body_over_the_limit() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        max_bytes: 16 * 1024,
        ..server.policy()
    };
    for path in ["/big-streamed", "/big-declared"] {
        let err = fetch_page(&server.url(path), &policy)
            .await
            .expect_err(path);
        assert_eq!(err, ImportError::TooLarge { max: 16 * 1024 }, "{path}");
        assert_failed(&err);
    }
    // The default 2 MiB limit accepts the 256 KiB streamed body.
    let page = fetch_page(&server.url("/big-streamed"), &server.policy())
        .await
        .expect("within the default limit");
    assert_eq!(page.html.len(), 64 * 4096);
}

#[tokio::test]
async fn non_html_is_refused() {
    let server = TestServer::start().await;
    let err = fetch_page(&server.url("/json"), &server.policy())
        .await
        .expect_err("json");
    assert_eq!(err, ImportError::NotHtml(Some("application/json".into())));
    assert_failed(&err);
    let err = fetch_page(&server.url("/no-content-type"), &server.policy())
        .await
        .expect_err("no content type");
    assert_eq!(err, ImportError::NotHtml(None));
    assert_failed(&err);
}

#[tokio::test]
async fn timeout_when_the_server_never_answers() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        timeout: Duration::from_millis(300),
        ..server.policy()
    };
    for path in ["/hang", "/slow-body"] {
        let started = Instant::now();
        let err = fetch_page(&server.url(path), &policy)
            .await
            .expect_err(path);
        assert_eq!(
            err,
            ImportError::Timeout(Duration::from_millis(300)),
            "{path}"
        );
        assert_failed(&err);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn upstream_errors() {
    let server = TestServer::start().await;
    for (path, status) in [
        ("/not-found", 404),
        ("/server-error", 503),
        ("/no-location", 302),
    ] {
        let err = fetch_page(&server.url(path), &server.policy())
            .await
            .expect_err(path);
        assert_eq!(err, ImportError::UpstreamStatus(status), "{path}");
        assert_failed(&err);
    }
}

#[tokio::test]
async fn connection_and_dns_failures() {
    // A port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let policy = FetchPolicy {
        allow_addresses: vec![LOCALHOST],
        allow_ports: vec![port],
        timeout: Duration::from_secs(3),
        ..FetchPolicy::default()
    };
    let err = fetch_page(&format!("http://127.0.0.1:{port}/"), &policy)
        .await
        .expect_err("refused connection");
    assert!(matches!(err, ImportError::Connect { .. }), "{err:?}");
    assert_failed(&err);

    let err = fetch_page_with_resolver(
        "https://nowhere.example/",
        &FetchPolicy::default(),
        &StaticResolver::new(),
    )
    .await
    .expect_err("dns");
    assert_eq!(
        err,
        ImportError::Dns {
            host: "nowhere.example".into()
        }
    );
    assert_failed(&err);
}
