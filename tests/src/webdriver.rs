//! A small WebDriver client (the W3C protocol over HTTP, with the crates the tests already
//! use) and a chromedriver it starts: enough to drive Debian's headless chromium through the
//! practice page and take screenshots.

use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// W3C's key for element references in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process on a free loopback port, stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts `CHROMEDRIVER` (default /usr/bin/chromedriver) and waits until it answers.
    pub async fn start() -> Self {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start {binary} ({err}): infra/test.sh installs chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(reply) = http.get(format!("{url}/status")).send().await {
                if reply.status().is_success() {
                    return Self { child, url };
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not answer on {url}");
    }

    /// A new headless browser with its own empty profile.
    pub async fn browser(&self) -> Browser {
        let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4()));
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let http = reqwest::Client::new();
        let reply: Value = http
            .post(format!("{}/session", self.url))
            .json(&json!({
                "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        // As root, without the sandbox; no background traffic to the outside.
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--window-size=1280,1000",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                }},
            }))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        Browser {
            http,
            base: format!("{}/session/{session}", self.url),
            profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    profile: PathBuf,
}

/// An element found on the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Waits until the practice page shows `screen` (the `data-screen` of its body).
    pub async fn on_screen(&self, screen: &str) {
        self.wait_for(
            &format!("body[data-screen='{screen}']"),
            |_| true,
            &format!("the {screen} screen"),
        )
        .await;
    }

    /// Switches the practice page's language (`ko`, `en`) with its toggle.
    pub async fn set_lang(&self, lang: &str) {
        self.find(&format!("#lang-{lang}")).await.click().await;
        self.wait_for(&format!("html[lang='{lang}']"), |_| true, "the language")
            .await;
    }

    /// Opens the practice page at `base`, signs up as `username` (named `name`) in `lang`, and
    /// waits for the list of concerts.
    pub async fn sign_up(&self, base: &str, username: &str, name: &str, lang: &str) {
        self.go(&format!("{base}/")).await;
        self.on_screen("login").await;
        self.set_lang(lang).await;
        self.find("#signup-username")
            .await
            .type_text(username)
            .await;
        self.find("#signup-password")
            .await
            .type_text("practice-password")
            .await;
        self.find("#signup-name").await.type_text(name).await;
        self.find("#signup-button").await.click().await;
        self.on_screen("choose").await;
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        if reply["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The first element matching `css`, waiting up to 15 s for it.
    pub async fn find(&self, css: &str) -> Element<'_> {
        self.wait_for(css, |_| true, "present").await
    }

    /// Waits until the element matching `css` satisfies `check` (given its text).
    pub async fn wait_for(
        &self,
        css: &str,
        check: impl Fn(&str) -> bool,
        what: &str,
    ) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .expect("chromedriver answers")
                .json::<Value>()
                .await
                .expect("a JSON answer");
            if let Some(id) = found["value"][ELEMENT_KEY].as_str() {
                let element = Element {
                    browser: self,
                    id: id.to_owned(),
                };
                if check(&element.text().await) {
                    return element;
                }
            }
            if Instant::now() > deadline {
                let error = self.text_of("#error").await;
                panic!("{css} never became {what}; the page's error line says {error:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every element matching `css`, now.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        browser: self,
                        id: id.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The text of the first element matching `css`, or "" if there is none.
    pub async fn text_of(&self, css: &str) -> String {
        match self.find_all(css).await.first() {
            Some(element) => element.text().await,
            None => String::new(),
        }
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Emulates a screen of `width`×`height` CSS pixels (a phone when `mobile`), through the
    /// DevTools protocol chromedriver passes on.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
                },
            })),
        )
        .await;
    }

    /// Writes a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Element<'_> {
    /// A command on this element: `POST` with `body`, or `GET` without.
    async fn command(&self, what: &str, body: Option<Value>) -> Value {
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        self.browser
            .call(method, &format!("/element/{}/{what}", self.id), body)
            .await
    }

    pub async fn click(&self) {
        self.command("click", Some(json!({}))).await;
    }

    pub async fn type_text(&self, text: &str) {
        self.command("clear", Some(json!({}))).await;
        self.command("value", Some(json!({ "text": text }))).await;
    }

    pub async fn text(&self) -> String {
        let text = self.command("text", None).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn attribute(&self, name: &str) -> Option<String> {
        let value = self.command(&format!("attribute/{name}"), None).await;
        value.as_str().map(str::to_owned)
    }

    pub async fn enabled(&self) -> bool {
        let enabled = self.command("enabled", None).await;
        enabled.as_bool().unwrap_or(false)
    }
}
