//! The domain's one error type and its mapping to the HTTP error contract.
//!
//! Every failure a client can see is a variant here; its status, code, message and details are
//! decided in this file and nowhere else. `Internal` carries the real cause for the logs only:
//! its public message never includes it (API.md: a 5xx never leaks internals).

use serde_json::{json, Value};

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    InvalidQueueToken(&'static str),
    #[error("{0}")]
    QueueTokenExpired(&'static str),
    #[error("still waiting in the queue")]
    QueueNotAdmitted { position: u64 },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("username is already taken")]
    UsernameTaken,
    #[error("seats are not available")]
    SeatUnavailable { seat_nos: Vec<u32> },
    /// The seats asked for would take the caller past the date's ticket limit.
    #[error("at most {limit} tickets a person for this date; {taken} already held or booked")]
    TicketLimitReached {
        limit: u32,
        taken: u32,
        requested: u32,
    },
    /// The caller let too many holds of this date go lately: seat parking.
    #[error("too many holds released or left to run out for this date; try again in {retry_after_seconds} s")]
    HoldCooldown { retry_after_seconds: u32 },
    #[error("reservation cannot be paid")]
    ReservationNotPayable,
    #[error("idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("balance is lower than the amount")]
    InsufficientBalance { balance: i64, amount: i64 },
    #[error("reservation hold has expired")]
    ReservationExpired,
    #[error("{0}")]
    BookingClosed(&'static str),
    #[error("{0}")]
    RateLimited(&'static str),
    /// The security letters typed do not match the picture: a new picture comes with it.
    #[error("answer: the letters do not match the picture; type the new one")]
    CaptchaMismatch { captcha_id: String, image: String },
    /// A page the import will not fetch: its address (or a redirect's) is not public.
    #[error("{0}")]
    ImportRefused(String),
    /// A page the import could not use: unreachable, too slow, too large, not HTML.
    #[error("{0}")]
    ImportFailed(String),
    /// A store or queue stayed throttled or unreachable after the service's own retries.
    /// Nothing was changed, or the change is found again by retrying the same request.
    #[error("the service is busy; retry in {retry_after_seconds} s")]
    ServiceBusy { retry_after_seconds: u32 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// `SERVICE_BUSY`, asking the client to come back in 1 to 3 seconds: spread at random, so
    /// that a throttled crowd does not return in step.
    pub fn busy() -> Self {
        Self::ServiceBusy {
            retry_after_seconds: 1 + (uuid::Uuid::new_v4().as_u128() % 3) as u32,
        }
    }

    /// Seconds the client should wait before retrying (the `Retry-After` header), for the
    /// errors that have one.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            Self::ServiceBusy {
                retry_after_seconds,
            }
            | Self::HoldCooldown {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation { .. } | Self::CaptchaMismatch { .. } => 400,
            Self::Unauthenticated(_) | Self::InvalidQueueToken(_) | Self::QueueTokenExpired(_) => {
                401
            }
            Self::InsufficientBalance { .. } => 402,
            Self::QueueNotAdmitted { .. } | Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::UsernameTaken
            | Self::SeatUnavailable { .. }
            | Self::TicketLimitReached { .. }
            | Self::ReservationNotPayable
            | Self::IdempotencyKeyReused => 409,
            Self::ReservationExpired => 410,
            Self::BookingClosed(_) | Self::ImportRefused(_) | Self::ImportFailed(_) => 422,
            Self::RateLimited(_) | Self::HoldCooldown { .. } => 429,
            Self::ServiceBusy { .. } => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } | Self::CaptchaMismatch { .. } => "VALIDATION_FAILED",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::InvalidQueueToken(_) => "INVALID_QUEUE_TOKEN",
            Self::QueueTokenExpired(_) => "QUEUE_TOKEN_EXPIRED",
            Self::QueueNotAdmitted { .. } => "QUEUE_NOT_ADMITTED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::SeatUnavailable { .. } => "SEAT_UNAVAILABLE",
            Self::TicketLimitReached { .. } => "TICKET_LIMIT_REACHED",
            Self::ReservationNotPayable => "RESERVATION_NOT_PAYABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            Self::ReservationExpired => "RESERVATION_EXPIRED",
            Self::BookingClosed(_) => "BOOKING_CLOSED",
            Self::RateLimited(_) | Self::HoldCooldown { .. } => "RATE_LIMITED",
            Self::ImportRefused(_) => "IMPORT_REFUSED",
            Self::ImportFailed(_) => "IMPORT_FAILED",
            Self::ServiceBusy { .. } => "SERVICE_BUSY",
            Self::Internal(_) => "INTERNAL",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Validation { field, reason } => json!({ "field": field, "reason": reason }),
            Self::CaptchaMismatch { captcha_id, image } => json!({
                "field": "answer",
                "reason": "the letters do not match the picture",
                "captcha": { "captcha_id": captcha_id, "image_svg": image },
            }),
            Self::QueueNotAdmitted { position } => json!({ "position": position }),
            Self::SeatUnavailable { seat_nos } => json!({ "seat_nos": seat_nos }),
            Self::TicketLimitReached {
                limit,
                taken,
                requested,
            } => json!({ "limit": limit, "taken": taken, "requested": requested }),
            Self::HoldCooldown {
                retry_after_seconds,
            } => json!({ "reason": "hold_cooldown", "retry_after_seconds": retry_after_seconds }),
            Self::InsufficientBalance { balance, amount } => {
                json!({ "balance": balance, "amount": amount })
            }
            Self::ServiceBusy {
                retry_after_seconds,
            } => json!({ "retry_after_seconds": retry_after_seconds }),
            _ => json!({}),
        }
    }

    /// The contract's error body: `{"error": {"code", "message", "details"}}`.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
                "details": self.details(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_internal_error_should_not_leak_its_cause() {
        let err = DomainError::internal("ConditionalCheckFailed: table ticketing-secret");
        let body = err.body().to_string();
        assert_eq!(err.status(), 500);
        assert!(!body.contains("ticketing-secret"), "{body}");
        assert_eq!(err.body()["error"]["code"], "INTERNAL");
    }

    #[test]
    fn when_busy_should_be_503_with_a_spread_retry_after() {
        let waits: std::collections::BTreeSet<u32> = (0..200)
            .map(|_| DomainError::busy().retry_after_seconds().unwrap())
            .collect();
        assert_eq!(waits, [1, 2, 3].into());
        let busy = DomainError::busy();
        assert_eq!((busy.status(), busy.code()), (503, "SERVICE_BUSY"));
        assert_eq!(
            busy.body()["error"]["details"]["retry_after_seconds"],
            busy.retry_after_seconds().unwrap()
        );
        assert_eq!(DomainError::internal("x").retry_after_seconds(), None);
    }

    #[test]
    fn when_validation_error_should_name_the_field() {
        let body = DomainError::validation("username", "too short").body();
        assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
        assert_eq!(body["error"]["details"]["field"], "username");
    }

    #[test]
    fn when_seat_unavailable_should_list_the_seats() {
        let err = DomainError::SeatUnavailable {
            seat_nos: vec![3, 4],
        };
        assert_eq!(err.status(), 409);
        assert_eq!(err.body()["error"]["details"]["seat_nos"], json!([3, 4]));
    }

    #[test]
    fn every_error_body_should_have_code_message_and_details() {
        let all = [
            DomainError::Unauthenticated("x"),
            DomainError::InvalidQueueToken("x"),
            DomainError::QueueTokenExpired("x"),
            DomainError::QueueNotAdmitted { position: 3 },
            DomainError::Forbidden("x"),
            DomainError::NotFound("concert"),
            DomainError::UsernameTaken,
            DomainError::ReservationNotPayable,
            DomainError::IdempotencyKeyReused,
            DomainError::InsufficientBalance {
                balance: 1,
                amount: 2,
            },
            DomainError::ReservationExpired,
            DomainError::BookingClosed("x"),
            DomainError::RateLimited("x"),
        ];
        for err in all {
            let body = err.body();
            assert!(body["error"]["code"].is_string());
            assert!(body["error"]["message"].is_string());
            assert!(body["error"]["details"].is_object());
            assert!((400..500).contains(&err.status()));
        }
    }
}
