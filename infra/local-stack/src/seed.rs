//! Demo data for the local stack (`SEED_DEMO=1`): one concert on sale now, two dates, 50 seats
//! each. Only when the catalog is empty, so restarting against a kept table adds nothing.

use chrono::Duration;
use shared::auth::Principal;
use shared::catalog::{NewConcert, NewSchedule};
use shared::runtime::Services;
use shared::Result;

pub async fn demo(services: &Services) -> Result<()> {
    if !services
        .list_concerts(Some("1"), None)
        .await?
        .items
        .is_empty()
    {
        return Ok(());
    }
    let now = services.clock.now();
    // Created as an admin would, by a principal of its own.
    let seeder = Principal {
        user_id: uuid::Uuid::nil(),
        username: "demo-seed".into(),
    };
    let created = services
        .create_concert(
            &seeder,
            NewConcert {
                title: "Demo Night: Seoul Live".into(),
                artist: "The Demo Band".into(),
                venue: "Olympic Hall, Seoul".into(),
                category: "K-POP".into(),
                description: "A demo concert, on sale from the moment the local stack starts."
                    .into(),
                image_url: None,
                booking_opens_at: now - Duration::hours(1),
                booking_closes_at: now + Duration::days(30),
                prequeue: false,
                schedules: vec![
                    NewSchedule {
                        starts_at: now + Duration::days(31),
                    },
                    NewSchedule {
                        starts_at: now + Duration::days(32),
                    },
                ],
                seat_map: None,
                price: Some(55_000),
                ticket_limit: None,
                cancellation_fees: None,
            },
        )
        .await?;
    tracing::info!(concert_id = %created.concert.concert_id, "seeded the demo concert");
    Ok(())
}
