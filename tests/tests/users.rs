//! Signup, login and `GET /me` through HTTP.

use e2e_tests::{Reply, TestApi, PASSWORD};
use futures::future::join_all;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

fn field(reply: Reply) -> String {
    let body = reply.expect_error(400, "VALIDATION_FAILED");
    body["error"]["details"]["field"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn signup_login_and_me_should_work_as_the_contract_says() {
    let api = TestApi::start().await;
    let created = api
        .post(
            "/users",
            None,
            json!({"username": "fan_01", "password": PASSWORD, "name": "김철수"}),
        )
        .await
        .expect(201);
    assert_eq!(created["username"], "fan_01");
    assert_eq!(created["name"], "김철수");
    assert!(created["user_id"].is_string() && created["created_at"].is_string());
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());

    let login = api
        .post(
            "/auth/login",
            None,
            json!({"username": "fan_01", "password": PASSWORD}),
        )
        .await
        .expect(200);
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 3600);
    let token = login["access_token"].as_str().unwrap();

    let me = api.get("/me", Some(token)).await.expect(200);
    assert_eq!(me["user_id"], created["user_id"]);
    assert_eq!(me["username"], "fan_01");
    assert_eq!(me["name"], "김철수");
    assert_eq!(me["balance"], 0);
    assert_eq!(me["last_entered_url"], Value::Null);
}

#[tokio::test]
async fn signup_should_refuse_bad_input_naming_the_field() {
    let api = TestApi::start().await;
    let signup = |body: Value| api.post("/users", None, body);
    let ok = json!({"username": "fan", "password": PASSWORD, "name": "Fan"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    assert_eq!(field(signup(json!("{\"username\": ")).await), "body");
    assert_eq!(field(signup(json!("[1, 2]")).await), "body");
    assert_eq!(
        field(signup(json!({"password": PASSWORD, "name": "x"})).await),
        "username"
    );
    assert_eq!(field(signup(with("username", json!(42))).await), "username");
    assert_eq!(
        field(signup(with("username", json!("Upper"))).await),
        "username"
    );
    assert_eq!(
        field(signup(with("username", json!("ab"))).await),
        "username"
    );
    assert_eq!(
        field(signup(with("password", json!("short"))).await),
        "password"
    );
    assert_eq!(
        field(signup(with("password", json!("x".repeat(129)))).await),
        "password"
    );
    assert_eq!(field(signup(with("name", json!(""))).await), "name");
    assert_eq!(
        field(signup(with("name", json!("n".repeat(101)))).await),
        "name"
    );
    // Nothing of the refused signups was written: the name is still free.
    signup(ok).await.expect(201);
}

#[tokio::test]
async fn duplicate_username_should_be_taken_even_under_a_race() {
    let api = TestApi::start().await;
    let attempts = join_all((0..20).map(|i| {
        api.post(
            "/users",
            None,
            json!({"username": "popular", "password": PASSWORD, "name": format!("Racer {i}")}),
        )
    }))
    .await;
    let created = attempts.iter().filter(|r| r.status == 201).count();
    let taken = attempts
        .iter()
        .filter(|r| r.status == 409 && r.code() == "USERNAME_TAKEN")
        .count();
    assert_eq!((created, taken), (1, 19));
    // The winner's password works; nobody else's profile took the name.
    let token = api.login("popular").await;
    api.get("/me", Some(&token)).await.expect(200);
}

#[tokio::test]
async fn login_should_not_tell_a_wrong_username_from_a_wrong_password() {
    let api = TestApi::start().await;
    api.signup("alice").await;
    let wrong_password = api
        .post(
            "/auth/login",
            None,
            json!({"username": "alice", "password": "not-the-password"}),
        )
        .await
        .expect_error(401, "UNAUTHENTICATED");
    let wrong_user = api
        .post(
            "/auth/login",
            None,
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await
        .expect_error(401, "UNAUTHENTICATED");
    assert_eq!(wrong_password, wrong_user);
    api.post("/auth/login", None, json!({"username": "alice"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    api.post("/auth/login", None, json!("not json"))
        .await
        .expect_error(400, "VALIDATION_FAILED");
}

#[derive(serde::Serialize)]
struct Claims {
    sub: String,
    username: String,
    iat: i64,
    exp: i64,
    iss: &'static str,
    aud: &'static str,
}

fn token(secret: &str, user_id: &str, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_owned(),
        username: "alice".into(),
        iat: now,
        exp: now + exp_offset,
        iss: "ticketing",
        aud: "access",
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn me_should_refuse_missing_forged_and_expired_tokens() {
    let api = TestApi::start().await;
    let user_id = api.signup("alice").await;
    // A token we sign ourselves with the stack's key works: the checks below test the claims.
    api.get("/me", Some(&token(&api.secret, &user_id, 600)))
        .await
        .expect(200);

    api.get("/me", None)
        .await
        .expect_error(401, "UNAUTHENTICATED");
    api.get("/me", Some("garbage"))
        .await
        .expect_error(401, "UNAUTHENTICATED");
    let forged = token("some-other-secret-of-enough-length!", &user_id, 600);
    api.get("/me", Some(&forged))
        .await
        .expect_error(401, "UNAUTHENTICATED");
    let expired = token(&api.secret, &user_id, -5);
    api.get("/me", Some(&expired))
        .await
        .expect_error(401, "UNAUTHENTICATED");
    let mut tampered = token(&api.secret, &user_id, 600);
    tampered.push('x');
    api.get("/me", Some(&tampered))
        .await
        .expect_error(401, "UNAUTHENTICATED");
}
