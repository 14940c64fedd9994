//! Practice runs: `POST /practice/runs`, `GET /practice/runs/{run_id}`, the security letters
//! (`POST .../captcha`, `POST .../captcha/answer`), `POST .../results` and `GET /me/practice`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::practice::{CaptchaAnswer, PracticeResult};
use shared::runtime::Services;

pub async fn create(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (concert, schedule) = services
        .create_practice_run(&principal, http::body(&request)?)
        .await?;
    let mut body = super::catalog::concert_with_dates(services, &concert, &[schedule])?;
    body["run_id"] = json!(concert.concert_id);
    http::json(201, &body)
}

pub async fn get(services: &Services, request: Request) -> HandlerResult {
    let run = services
        .practice_run(&http::path(&request, "run_id")?)
        .await?;
    let mut body = super::catalog::concert_with_dates(
        services,
        &run.concert,
        std::slice::from_ref(&run.schedule),
    )?;
    body["run_id"] = json!(run.concert.concert_id);
    body["now"] = json!(run.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    body["crowd"] = json!({
        "in_line": run.in_line,
        "admitted": run.admitted,
        "seats_gone": run.seats_gone,
        "total_seats": run.total_seats,
        "pace_per_second": run.pace_per_second,
    });
    http::json(200, &body)
}

pub async fn captcha(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (captcha_id, image) = services
        .practice_captcha(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "run_id")?,
        )
        .await?;
    http::json(
        201,
        &json!({ "captcha_id": captcha_id, "image_svg": image }),
    )
}

pub async fn answer(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let body: CaptchaAnswer = http::body(&request)?;
    body.validate()?;
    services
        .answer_practice_captcha(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "run_id")?,
            &body.captcha_id,
            &body.answer,
        )
        .await?;
    http::json(200, &json!({ "passed": true }))
}

pub async fn results(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let result = services
        .record_practice_result(
            &principal,
            &http::path(&request, "run_id")?,
            http::body(&request)?,
        )
        .await?;
    http::json(201, &view(&result))
}

pub async fn history(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let history = services.practice_history(&principal).await?;
    let best: serde_json::Map<String, Value> = history
        .best
        .iter()
        .map(|(site, result)| (site.clone(), view(result)))
        .collect();
    http::json(
        200,
        &json!({
            "items": history.recent.iter().map(view).collect::<Vec<_>>(),
            "best": best,
        }),
    )
}

fn view(result: &PracticeResult) -> Value {
    serde_json::to_value(result).unwrap_or(Value::Null)
}
