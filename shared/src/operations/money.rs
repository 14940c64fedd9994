//! Charging, paying, cancelling with refund, and reading balances, ledgers and sales.

use crate::auth::Principal;
use crate::error::{DomainError, Result};
use crate::events::DomainEvent;
use crate::ids::{new_id, parse_id};
use crate::metrics;
use crate::money::{
    idempotency_key, request_fingerprint, Charge, EntryType, IdempotentOutcome, LedgerEntry, Pay,
    Payment,
};
use crate::queue::QueueClaims;
use crate::reservations::{Reservation, ReservationStatus};
use crate::rules::CancellationTerms;
use crate::runtime::Services;
use crate::store::{CancelWrite, PaymentWrite, Role, SalesCounters};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// How often a money operation re-reads and retries when a concurrent change of the same
/// account won the race, before answering 429 (the client may retry with the same key).
const MAX_ATTEMPTS: u32 = 25;

/// The answer to a request made with an idempotency key: the first answer, on every retry.
#[derive(Clone, Debug, PartialEq)]
pub struct Replied {
    pub status: u16,
    pub body: Value,
}

/// Whether and on what terms a reservation may be cancelled now.
#[derive(Clone, Debug, PartialEq)]
pub enum Terms {
    Cancellable {
        refund: i64,
        fee: i64,
    },
    /// Only confirmed bookings are cancelled.
    NotConfirmed,
    /// Too near the show (or past it).
    Closed(&'static str),
}

/// `GET /reservations/{id}/cancellation`.
pub struct CancellationPreview {
    pub terms: Terms,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One schedule's figures for `GET /admin/concerts/{id}/sales`.
pub struct ScheduleSales {
    pub schedule_id: Uuid,
    pub counters: SalesCounters,
    pub held_seats: u32,
}

/// A short random pause before retrying a lost race, so racers spread out.
async fn backoff(attempt: u32) {
    let jitter = (Uuid::new_v4().as_u128() % 20) as u64;
    let millis = (5u64 << attempt.min(4)) + jitter;
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// The answer when every attempt lost a race: `RATE_LIMITED` if the account kept changing under
/// us (other requests of the same user), `SERVICE_BUSY` if the store kept refusing (throttled
/// or busy items).
fn gave_up(contended: bool) -> DomainError {
    if contended {
        DomainError::RateLimited(
            "too many concurrent changes to this balance; retry with the same key",
        )
    } else {
        DomainError::busy()
    }
}

/// A recorded first answer as the reply to `request`, or `IDEMPOTENCY_KEY_REUSED` if it
/// answered another request.
fn replayed(outcome: IdempotentOutcome, request: &str) -> Result<Replied> {
    if outcome.request != request {
        return Err(DomainError::IdempotencyKeyReused);
    }
    Ok(Replied {
        status: outcome.status,
        body: serde_json::from_str(&outcome.body).map_err(DomainError::internal)?,
    })
}

impl Services {
    /// The first answer given to `key` for the same request, or `IDEMPOTENCY_KEY_REUSED` if
    /// the key was used for another request.
    async fn replay(&self, user_id: Uuid, key: &str, request: &str) -> Result<Option<Replied>> {
        self.store
            .idempotent_outcome(user_id, key)
            .await?
            .map(|outcome| replayed(outcome, request))
            .transpose()
    }

    /// Runs `attempt` for a request made with an optional idempotency key. The attempt itself
    /// looks the key up in its first read (which saves a round trip) and answers a key seen
    /// before with its first answer; when the attempt fails, the key is looked up once more,
    /// because a concurrent request with the same key may have succeeded meanwhile (its
    /// success is then the answer, not the failure it caused, such as "already paid").
    async fn idempotently<F, Fut>(
        &self,
        user_id: Uuid,
        key: Option<&str>,
        request: &str,
        attempt: F,
    ) -> Result<Replied>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Replied>>,
    {
        let Some(key) = key else {
            return attempt().await;
        };
        match attempt().await {
            Ok(replied) => Ok(replied),
            Err(
                err @ (DomainError::Internal(_)
                | DomainError::RateLimited(_)
                | DomainError::ServiceBusy { .. }),
            ) => Err(err),
            Err(err) => match self.replay(user_id, key, request).await? {
                Some(replied) => Ok(replied),
                None => Err(err),
            },
        }
    }

    /// `POST /balance/charge`.
    pub async fn charge(
        &self,
        principal: &Principal,
        raw_key: Option<&str>,
        body: Charge,
    ) -> Result<Replied> {
        let key = idempotency_key(raw_key)?;
        body.validate()?;
        let request = request_fingerprint("charge", &body);
        self.idempotently(principal.user_id, key.as_deref(), &request, || {
            self.charge_once(principal.user_id, key.as_deref(), &request, body.amount)
        })
        .await
    }

    async fn charge_once(
        &self,
        user_id: Uuid,
        key: Option<&str>,
        request: &str,
        amount: i64,
    ) -> Result<Replied> {
        let mut contended = false;
        for attempt in 0..MAX_ATTEMPTS {
            let (account, replay) = self.store.account_and_replay(user_id, key).await?;
            if let Some(outcome) = replay {
                return replayed(outcome, request);
            }
            let account = account.ok_or(DomainError::NotFound("user"))?;
            let now = self.clock.now();
            let (entry, after) = account.apply(EntryType::Charge, amount, None, new_id(), now)?;
            let replied = Replied {
                status: 200,
                body: json!({ "balance": after.balance, "transaction_id": entry.transaction_id }),
            };
            let outcome = IdempotentOutcome {
                request: request.to_owned(),
                status: replied.status,
                body: replied.body.to_string(),
            };
            let idempotency = key.map(|key| (key, &outcome));
            match self
                .store
                .charge(user_id, account, after, &entry, idempotency, now)
                .await?
            {
                Ok(()) => {
                    metrics::count("Charges", 1);
                    return Ok(replied);
                }
                // The same key won a race with itself: `idempotently` answers what it answered.
                Err(cancelled) if cancelled.failed(Role::Idempotency) => {
                    return Err(DomainError::IdempotencyKeyReused)
                }
                Err(cancelled) => {
                    contended = !cancelled.failed.is_empty();
                    backoff(attempt).await
                }
            }
        }
        Err(gave_up(contended))
    }

    /// `GET /balance`.
    pub async fn balance(&self, principal: &Principal) -> Result<i64> {
        Ok(self
            .store
            .account(principal.user_id)
            .await?
            .ok_or(DomainError::NotFound("user"))?
            .balance)
    }

    /// `GET /balance/transactions`: the ledger, newest first.
    pub async fn ledger(
        &self,
        principal: &Principal,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<(Vec<LedgerEntry>, Option<String>)> {
        self.store
            .ledger(principal.user_id, super::page_size(limit)?, cursor)
            .await
    }

    /// `GET /me/reservations`: newest first.
    pub async fn my_reservations(
        &self,
        principal: &Principal,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<(Vec<Reservation>, Option<String>)> {
        self.store
            .reservations_of(principal.user_id, super::page_size(limit)?, cursor)
            .await
    }

    /// `POST /payments`: pays a live hold from the balance in one transaction (see
    /// `Store::pay`). With too little balance, no money moves and the hold is released.
    pub async fn pay(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_key: Option<&str>,
        body: Pay,
    ) -> Result<Replied> {
        let key = idempotency_key(raw_key)?;
        let reservation_id = parse_id(&body.reservation_id)
            .ok_or_else(|| DomainError::validation("reservation_id", "must be a reservation id"))?;
        let request = request_fingerprint("pay", &body);
        // The queue token is checked inside the attempt, after the stored answer (if any) is
        // looked up: a retry of a completed payment is answered even though paying used the
        // token up and its JWT may have expired since.
        self.idempotently(principal.user_id, key.as_deref(), &request, || async {
            let claims = self.admission_claims(principal, queue_token)?;
            self.pay_once(
                principal.user_id,
                claims,
                reservation_id,
                key.as_deref(),
                &request,
            )
            .await
        })
        .await
    }

    async fn pay_once(
        &self,
        user_id: Uuid,
        claims: QueueClaims,
        reservation_id: Uuid,
        key: Option<&str>,
        request: &str,
    ) -> Result<Replied> {
        let mut contended = false;
        for attempt in 0..MAX_ATTEMPTS {
            let context = self
                .store
                .payment_context(user_id, reservation_id, claims.cid, claims.shd, key)
                .await?;
            if let Some(outcome) = context.replay {
                return replayed(outcome, request);
            }
            let reservation = context
                .reservation
                .ok_or(DomainError::NotFound("reservation"))?;
            if reservation.concert_id != claims.cid {
                return Err(DomainError::InvalidQueueToken(
                    "the queue token is for another concert",
                ));
            }
            let now = self.clock.now();
            // The reservation's state first: a paid one is 409 even though paying also used
            // up the queue token.
            match reservation.status(now) {
                ReservationStatus::Held => {}
                ReservationStatus::Expired => return Err(DomainError::ReservationExpired),
                _ => return Err(DomainError::ReservationNotPayable),
            }
            self.check_admitted(claims.clone(), context.token, &context.progress)?;
            let account = context.account.ok_or(DomainError::NotFound("user"))?;
            let applied = account.apply(
                EntryType::Payment,
                reservation.amount,
                Some(reservation_id),
                new_id(),
                now,
            );
            let cancelled = match applied {
                Err(declined @ DomainError::InsufficientBalance { .. }) => {
                    let outcome = IdempotentOutcome {
                        request: request.to_owned(),
                        status: declined.status(),
                        body: declined.body().to_string(),
                    };
                    let idempotency = key.map(|key| (key, &outcome));
                    match self
                        .store
                        .decline_payment(&reservation, account, idempotency, now)
                        .await?
                    {
                        Ok(()) => {
                            metrics::count("PaymentsDeclined", 1);
                            self.events
                                .publish(vec![DomainEvent::about(
                                    "HoldReleased",
                                    &reservation,
                                    None,
                                )])
                                .await;
                            return Err(declined);
                        }
                        Err(cancelled) => cancelled,
                    }
                }
                Err(other) => return Err(other),
                Ok((entry, after)) => {
                    let payment = Payment {
                        payment_id: new_id(),
                        reservation_id,
                        amount: reservation.amount,
                        balance_before: entry.balance_before,
                        balance_after: entry.balance_after,
                        paid_at: now,
                    };
                    let replied = Replied {
                        status: 201,
                        body: json!({
                            "payment_id": payment.payment_id,
                            "reservation_id": payment.reservation_id,
                            "amount": payment.amount,
                            "balance_before": payment.balance_before,
                            "balance_after": payment.balance_after,
                            "paid_at": payment.paid_at,
                            "status": "COMPLETED",
                        }),
                    };
                    let outcome = IdempotentOutcome {
                        request: request.to_owned(),
                        status: replied.status,
                        body: replied.body.to_string(),
                    };
                    let write = PaymentWrite {
                        reservation: &reservation,
                        payment: &payment,
                        read: account,
                        after,
                        entry: &entry,
                        token_id: claims.tid,
                        idempotency: key.map(|key| (key, &outcome)),
                        now,
                    };
                    match self.store.pay(write).await? {
                        Ok(()) => {
                            metrics::count("Payments", 1);
                            self.events
                                .publish(vec![DomainEvent::about(
                                    "PaymentCompleted",
                                    &reservation,
                                    Some(payment.payment_id),
                                )])
                                .await;
                            return Ok(replied);
                        }
                        Err(cancelled) => cancelled,
                    }
                }
            };
            if cancelled.failed(Role::Idempotency) {
                // The same key won a race with itself: `idempotently` answers what it answered.
                return Err(DomainError::IdempotencyKeyReused);
            }
            // Every role but the new payment item can change under us (or collide with a
            // concurrent transaction on the same item, as two payments of one date do on its
            // sales counter).
            let retryable = [
                Role::Account,
                Role::Ledger,
                Role::Reservation,
                Role::QueueToken,
                Role::ActiveSlot,
                Role::Seat,
                Role::Sales,
                Role::Tickets,
            ];
            if !cancelled.failed.iter().all(|role| retryable.contains(role)) {
                return Err(DomainError::internal(format!(
                    "payment failed on {:?}",
                    cancelled.failed
                )));
            }
            // Something changed under us (a racing payment, a charge, expiry) or was busy:
            // read again, and the next round either succeeds or says precisely why not.
            contended = !cancelled.failed.is_empty();
            backoff(attempt).await;
        }
        Err(gave_up(contended))
    }

    /// `POST /reservations/{id}/cancel`: a confirmed booking, before its show, is cancelled,
    /// its seats go back on sale and its amount is refunded. One transaction.
    pub async fn cancel_booking(&self, principal: &Principal, raw_id: &str) -> Result<Reservation> {
        let mut contended = false;
        for attempt in 0..MAX_ATTEMPTS {
            let (reservation, account) = tokio::try_join!(
                self.my_reservation(principal, raw_id),
                self.store.account(principal.user_id),
            )?;
            let account = account.ok_or(DomainError::NotFound("user"))?;
            let now = self.clock.now();
            if reservation.status(now) == ReservationStatus::Cancelled
                && reservation.cancelled_at.is_some_and(|at| {
                    now - at <= chrono::Duration::seconds(super::REPEAT_WINDOW_SECONDS)
                })
            {
                // Cancelled by the owner moments ago: this is that cancellation asked again
                // (its answer was lost), and its answer is the same.
                return Ok(reservation);
            }
            let (refund, fee) = match self.cancellation_terms_of(&reservation, now).await? {
                Terms::Cancellable { refund, fee } => (refund, fee),
                Terms::NotConfirmed => return Err(DomainError::ReservationNotPayable),
                Terms::Closed(why) => return Err(DomainError::BookingClosed(why)),
            };
            let (entry, after) = account
                .apply(
                    EntryType::Refund,
                    refund,
                    Some(reservation.reservation_id),
                    new_id(),
                    now,
                )
                .map_err(|_| {
                    DomainError::validation(
                        "balance",
                        "the refund would take the balance over 100000000; spend some first",
                    )
                })?;
            let write = CancelWrite {
                reservation: &reservation,
                read: account,
                after,
                entry: &entry,
                refund,
                fee,
                now,
            };
            match self.store.cancel_booking(write).await? {
                Ok(()) => {
                    metrics::count("BookingsCancelled", 1);
                    self.events
                        .publish(vec![DomainEvent::about(
                            "BookingCancelled",
                            &reservation,
                            None,
                        )])
                        .await;
                    return Ok(Reservation {
                        status: ReservationStatus::Cancelled,
                        cancelled_at: Some(now),
                        refund: Some(refund),
                        cancellation_fee: Some(fee),
                        ..reservation
                    });
                }
                Err(cancelled)
                    if cancelled.failed.iter().all(|role| {
                        matches!(
                            role,
                            Role::Account
                                | Role::Ledger
                                | Role::Reservation
                                | Role::Seat
                                | Role::Sales
                                | Role::Tickets
                        )
                    }) =>
                {
                    contended = !cancelled.failed.is_empty();
                    backoff(attempt).await
                }
                Err(cancelled) => {
                    return Err(DomainError::internal(format!(
                        "cancel failed on {:?}",
                        cancelled.failed
                    )))
                }
            }
        }
        Err(gave_up(contended))
    }

    /// `GET /reservations/{id}/cancellation`: what cancelling the caller's booking would give
    /// back now, by the concert's fee schedule.
    pub async fn cancellation_preview(
        &self,
        principal: &Principal,
        raw_id: &str,
    ) -> Result<(Reservation, CancellationPreview)> {
        let reservation = self.my_reservation(principal, raw_id).await?;
        let now = self.clock.now();
        let terms = self.cancellation_terms_of(&reservation, now).await?;
        Ok((reservation, CancellationPreview { terms, at: now }))
    }

    /// The terms of cancelling `reservation` at `now`.
    async fn cancellation_terms_of(
        &self,
        reservation: &Reservation,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Terms> {
        if reservation.status(now) != ReservationStatus::Confirmed {
            return Ok(Terms::NotConfirmed);
        }
        if reservation.starts_at <= now {
            return Ok(Terms::Closed("the show has already started"));
        }
        let concert = self.concert(&reservation.concert_id.to_string()).await?;
        let booked_at = reservation.paid_at.unwrap_or(reservation.created_at);
        Ok(
            match concert.cancellation_fees.terms(
                reservation.amount,
                reservation.seats.len() as u32,
                booked_at,
                reservation.starts_at,
                now,
            ) {
                CancellationTerms::Cancellable { refund, fee } => {
                    Terms::Cancellable { refund, fee }
                }
                CancellationTerms::Closed => {
                    Terms::Closed("a booking cannot be cancelled this near the show")
                }
            },
        )
    }

    /// `GET /admin/concerts/{id}/sales`.
    pub async fn sales(&self, raw_concert_id: &str) -> Result<Vec<ScheduleSales>> {
        let concert_id = parse_id(raw_concert_id).ok_or(DomainError::NotFound("concert"))?;
        let (schedules, counters) = self
            .store
            .sales(concert_id)
            .await?
            .ok_or(DomainError::NotFound("concert"))?;
        let now = self.clock.now();
        let held = futures::future::try_join_all(
            schedules
                .iter()
                .map(|schedule| self.store.held_seats(schedule, now)),
        )
        .await?;
        Ok(schedules
            .iter()
            .zip(held)
            .map(|(schedule, held_seats)| ScheduleSales {
                schedule_id: schedule.schedule_id,
                counters: counters
                    .get(&schedule.schedule_id)
                    .copied()
                    .unwrap_or_default(),
                held_seats,
            })
            .collect())
    }
}
