//! A small HTTP server on 127.0.0.1 that serves fixed pages: the "ticket sale pages" the import
//! tests and the browser test fetch. Only reachable by the import through the test-only
//! `IMPORT_TEST_ALLOW` setting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One answer: status, content type, extra headers, body.
#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn html(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn redirect(location: impl Into<String>) -> Self {
        Self {
            status: 302,
            content_type: "text/plain",
            headers: vec![("location".to_owned(), location.into())],
            body: String::new(),
        }
    }

    pub fn other(content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

pub struct PageServer {
    pub addr: SocketAddr,
}

impl PageServer {
    /// Serves `pages` by path (query strings ignored); anything else is a 404.
    pub async fn start(pages: Vec<(&str, Page)>) -> Self {
        let pages: Arc<HashMap<String, Page>> = Arc::new(
            pages
                .into_iter()
                .map(|(path, page)| (path.to_owned(), page))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let pages = pages.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                        if request.len() > 65_536 {
                            return;
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let target = text.split_whitespace().nth(1).unwrap_or("/");
                    let path = target.split(['?', '#']).next().unwrap_or("/");
                    let page = pages.get(path).cloned().unwrap_or(Page {
                        status: 404,
                        content_type: "text/plain",
                        headers: Vec::new(),
                        body: "not found".to_owned(),
                    });
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                        page.status,
                        page.content_type,
                        page.body.len()
                    );
                    for (name, value) in &page.headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(page.body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A Korean ticket sale page: JSON-LD event with an open time, Open Graph poster.
pub fn korean_sale_page(opens_at: chrono::DateTime<chrono::Utc>) -> String {
    let opens = opens_at
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("KST"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    format!(
        r#"<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<title>2026 아이유 콘서트 〈HEREH〉 - 티켓</title>
<meta property="og:title" content="2026 아이유 콘서트">
<meta property="og:description" content="서울 올림픽공원 KSPO DOME, 2회 공연">
<meta property="og:image" content="/poster.jpg">
<script type="application/ld+json">
{{"@context":"https://schema.org","@type":"MusicEvent","name":"2026 IU Concert HEREH",
 "description":"Two nights at KSPO DOME.","startDate":"2026-12-24T19:00:00+09:00",
 "location":{{"@type":"Place","name":"KSPO DOME"}},
 "performer":{{"@type":"MusicGroup","name":"IU"}},
 "image":"https://images.example.com/iu-poster.jpg",
 "offers":{{"@type":"Offer","availabilityStarts":"{opens}"}}}}
</script>
</head><body><h1>2026 아이유 콘서트</h1><p>티켓오픈 안내</p></body></html>"#
    )
}
