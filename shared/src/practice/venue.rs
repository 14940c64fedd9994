//! The venues a practice run can be held in: layouts of 1,000 to 20,000 seats in zones of 500
//! (twenty rows of twenty-five), so that a zone is exactly one of a date's seat partitions
//! (`store::keys::SEATS_PER_PARTITION`) and one `Query` serves it.

use crate::catalog::Seat;
use serde::Serialize;

/// Seats in a zone: one seat partition.
pub const ZONE_SEATS: u32 = 500;
const ROWS: u32 = 20;
const SEATS_PER_ROW: u32 = 25;

/// A zone of a venue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Zone {
    /// 0-based; seats `index * 500 + 1 ..= (index + 1) * 500`.
    pub index: u32,
    /// Its name on the map ("플로어 A", "2층 12구역").
    pub name: String,
    pub grade: &'static str,
    pub price: i64,
    pub rows: u32,
    pub seats_per_row: u32,
}

impl Zone {
    pub fn first_seat(&self) -> u32 {
        self.index * ZONE_SEATS + 1
    }

    pub fn seat_nos(&self) -> std::ops::RangeInclusive<u32> {
        self.first_seat()..=self.first_seat() + ZONE_SEATS - 1
    }
}

/// A venue layout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Venue {
    pub code: &'static str,
    /// What the page calls it.
    pub name: &'static str,
    pub zones: Vec<Zone>,
}

/// The grades, best first, with their prices (won).
pub const GRADES: [(&str, i64); 4] = [
    ("VIP", 165_000),
    ("R", 143_000),
    ("S", 121_000),
    ("A", 99_000),
];

/// The venue codes, smallest first.
pub const CODES: [&str; 4] = ["theatre", "hall", "arena", "stadium"];

impl Venue {
    /// A layout by its code.
    pub fn by_code(code: &str) -> Option<Self> {
        // (name, [(zones of a grade, the zones' name prefix)]) front to back.
        let (name, plan): (&str, &[(usize, &str, usize)]) = match code {
            "theatre" => ("Theatre, 1,000 seats", &[(0, "1층", 1), (1, "2층", 1)]),
            "hall" => (
                "Concert hall, 5,000 seats",
                &[(0, "플로어", 4), (1, "2층", 4), (2, "3층", 2)],
            ),
            "arena" => (
                "Arena, 10,000 seats",
                &[
                    (0, "플로어", 4),
                    (1, "1층", 8),
                    (2, "2층", 6),
                    (3, "3층", 2),
                ],
            ),
            "stadium" => (
                "Stadium, 20,000 seats",
                &[
                    (0, "그라운드", 8),
                    (1, "1층", 12),
                    (2, "2층", 12),
                    (3, "3층", 8),
                ],
            ),
            _ => return None,
        };
        let mut zones = Vec::new();
        for &(grade, prefix, count) in plan {
            for n in 0..count {
                let (grade, price) = GRADES[grade];
                zones.push(Zone {
                    index: zones.len() as u32,
                    name: if prefix == "플로어" || prefix == "그라운드" {
                        format!("{prefix} {}", (b'A' + n as u8) as char)
                    } else {
                        format!("{prefix} {}구역", n + 1)
                    },
                    grade,
                    price,
                    rows: ROWS,
                    seats_per_row: SEATS_PER_ROW,
                });
            }
        }
        Some(Self {
            code: CODES.iter().find(|c| **c == code).copied()?,
            name,
            zones,
        })
    }

    /// The venue for a date of `seats` seats: the smallest that holds them.
    pub fn for_size(seats: u32) -> Self {
        let code = match seats {
            0..=1_000 => "theatre",
            1_001..=5_000 => "hall",
            5_001..=10_000 => "arena",
            _ => "stadium",
        };
        Self::by_code(code).expect("a known code")
    }

    pub fn total_seats(&self) -> u32 {
        self.zones.len() as u32 * ZONE_SEATS
    }

    pub fn zone_of(&self, seat_no: u32) -> Option<&Zone> {
        if seat_no == 0 {
            return None;
        }
        self.zones.get(((seat_no - 1) / ZONE_SEATS) as usize)
    }

    /// A seat of the layout, as a date's seat map shows it.
    pub fn seat(&self, seat_no: u32) -> Option<Seat> {
        let zone = self.zone_of(seat_no)?;
        let offset = seat_no - zone.first_seat();
        Some(Seat {
            seat_no,
            section: zone.name.clone(),
            row: offset / zone.seats_per_row + 1,
            grade: zone.grade.to_owned(),
            price: zone.price,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_venue_should_be_zones_of_one_seat_partition_each() {
        let sizes: Vec<u32> = CODES
            .iter()
            .map(|code| Venue::by_code(code).unwrap().total_seats())
            .collect();
        assert_eq!(sizes, [1_000, 5_000, 10_000, 20_000]);
        assert_eq!(ZONE_SEATS, crate::store::keys::SEATS_PER_PARTITION);
        let hall = Venue::by_code("hall").unwrap();
        let seat = hall.seat(1_026).unwrap();
        assert_eq!(
            (seat.section.as_str(), seat.row, seat.grade.as_str()),
            ("플로어 C", 2, "VIP")
        );
        assert_eq!(hall.seat(5_001), None);
        assert_eq!(hall.zones[4].name, "2층 1구역");
        assert_eq!(Venue::for_size(7_000).code, "arena");
    }
}
