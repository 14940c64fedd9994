//! The security letters (보안문자) of a practice run: six capital letters drawn as strokes
//! (not as text a script could read off the page), bent, shifted and crossed with noise lines,
//! as the big sites put them before the seat map. The letters of a captcha follow from its id
//! and the service's key, so nothing is stored to check an answer; the id names the run, the
//! fan and when it was made, and is signed by the same key.

use super::Random;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Letters that cannot be mistaken for digits or for each other.
pub const LETTERS: &[u8; 19] = b"ACDEFHJKLMNPRTUVWXY";
pub const LENGTH: usize = 6;
/// A captcha is good for this long.
pub const VALID_MS: i64 = 5 * 60 * 1000;

/// Strokes of each letter on a 4 × 6 grid (x right, y down), as polylines.
fn strokes(letter: u8) -> &'static [&'static [(f64, f64)]] {
    match letter {
        b'A' => &[
            &[(0.0, 6.0), (2.0, 0.0), (4.0, 6.0)],
            &[(1.0, 3.5), (3.0, 3.5)],
        ],
        b'C' => &[&[
            (4.0, 1.0),
            (3.0, 0.0),
            (1.0, 0.0),
            (0.0, 1.0),
            (0.0, 5.0),
            (1.0, 6.0),
            (3.0, 6.0),
            (4.0, 5.0),
        ]],
        b'D' => &[&[
            (0.0, 0.0),
            (0.0, 6.0),
            (3.0, 6.0),
            (4.0, 5.0),
            (4.0, 1.0),
            (3.0, 0.0),
            (0.0, 0.0),
        ]],
        b'E' => &[
            &[(4.0, 0.0), (0.0, 0.0), (0.0, 6.0), (4.0, 6.0)],
            &[(0.0, 3.0), (3.0, 3.0)],
        ],
        b'F' => &[
            &[(4.0, 0.0), (0.0, 0.0), (0.0, 6.0)],
            &[(0.0, 3.0), (3.0, 3.0)],
        ],
        b'H' => &[
            &[(0.0, 0.0), (0.0, 6.0)],
            &[(4.0, 0.0), (4.0, 6.0)],
            &[(0.0, 3.0), (4.0, 3.0)],
        ],
        b'J' => &[&[(4.0, 0.0), (4.0, 5.0), (3.0, 6.0), (1.0, 6.0), (0.0, 5.0)]],
        b'K' => &[
            &[(0.0, 0.0), (0.0, 6.0)],
            &[(4.0, 0.0), (0.0, 3.0), (4.0, 6.0)],
        ],
        b'L' => &[&[(0.0, 0.0), (0.0, 6.0), (4.0, 6.0)]],
        b'M' => &[&[(0.0, 6.0), (0.0, 0.0), (2.0, 3.0), (4.0, 0.0), (4.0, 6.0)]],
        b'N' => &[&[(0.0, 6.0), (0.0, 0.0), (4.0, 6.0), (4.0, 0.0)]],
        b'P' => &[&[
            (0.0, 6.0),
            (0.0, 0.0),
            (3.0, 0.0),
            (4.0, 1.0),
            (4.0, 2.0),
            (3.0, 3.0),
            (0.0, 3.0),
        ]],
        b'R' => &[
            &[
                (0.0, 6.0),
                (0.0, 0.0),
                (3.0, 0.0),
                (4.0, 1.0),
                (4.0, 2.0),
                (3.0, 3.0),
                (0.0, 3.0),
            ],
            &[(2.0, 3.0), (4.0, 6.0)],
        ],
        b'T' => &[&[(0.0, 0.0), (4.0, 0.0)], &[(2.0, 0.0), (2.0, 6.0)]],
        b'U' => &[&[
            (0.0, 0.0),
            (0.0, 5.0),
            (1.0, 6.0),
            (3.0, 6.0),
            (4.0, 5.0),
            (4.0, 0.0),
        ]],
        b'V' => &[&[(0.0, 0.0), (2.0, 6.0), (4.0, 0.0)]],
        b'W' => &[&[(0.0, 0.0), (1.0, 6.0), (2.0, 2.0), (3.0, 6.0), (4.0, 0.0)]],
        b'X' => &[&[(0.0, 0.0), (4.0, 6.0)], &[(4.0, 0.0), (0.0, 6.0)]],
        b'Y' => &[
            &[(0.0, 0.0), (2.0, 3.0), (4.0, 0.0)],
            &[(2.0, 3.0), (2.0, 6.0)],
        ],
        _ => &[],
    }
}

/// HMAC-SHA-256.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The captcha key derived from the service's token-signing secret.
pub fn key(secret: &[u8]) -> Vec<u8> {
    hmac(secret, b"practice captcha").to_vec()
}

/// A new captcha id for a run and a fan, made at `now_ms`: readable parts and a signature.
pub fn new_id(key: &[u8], run_id: &str, user_id: &str, now_ms: i64, nonce: u64) -> String {
    let body = format!("{run_id}.{user_id}.{now_ms}.{nonce:016x}");
    let signature = hmac(key, body.as_bytes());
    format!("{body}.{}", hex(&signature[..12]))
}

/// Checks a captcha id: signed by `key`, for this run and fan, and not older than
/// [`VALID_MS`] at `now_ms`.
pub fn check_id(key: &[u8], id: &str, run_id: &str, user_id: &str, now_ms: i64) -> bool {
    let Some((body, signature)) = id.rsplit_once('.') else {
        return false;
    };
    let expected = hmac(key, body.as_bytes());
    if !constant_time_eq(hex(&expected[..12]).as_bytes(), signature.as_bytes()) {
        return false;
    }
    let parts: Vec<&str> = body.split('.').collect();
    let [run, user, made, _nonce] = parts[..] else {
        return false;
    };
    let Ok(made) = made.parse::<i64>() else {
        return false;
    };
    run == run_id && user == user_id && made <= now_ms + 5_000 && now_ms - made <= VALID_MS
}

/// The letters of a captcha.
pub fn answer(key: &[u8], id: &str) -> String {
    let digest = hmac(key, format!("letters:{id}").as_bytes());
    digest[..LENGTH]
        .iter()
        .map(|b| LETTERS[*b as usize % LETTERS.len()] as char)
        .collect()
}

/// Whether a typed answer matches (case and spaces do not matter).
pub fn matches(key: &[u8], id: &str, typed: &str) -> bool {
    let typed: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    constant_time_eq(typed.as_bytes(), answer(key, id).as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The picture of a captcha: an SVG document of 240 × 80.
pub fn image(key: &[u8], id: &str) -> String {
    let letters = answer(key, id);
    let seed = u64::from_be_bytes(
        hmac(key, format!("picture:{id}").as_bytes())[..8]
            .try_into()
            .unwrap(),
    );
    let mut random = Random::new(seed);
    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"240\" height=\"80\" viewBox=\"0 0 240 80\">\
         <rect width=\"240\" height=\"80\" fill=\"#f4f1ea\"/>",
    );
    // Noise under the letters: curves and dots.
    for _ in 0..5 {
        let y1 = 10.0 + random.unit() * 60.0;
        let y2 = 10.0 + random.unit() * 60.0;
        svg.push_str(&format!(
            "<path d=\"M0 {y1:.1} C80 {:.1} 160 {:.1} 240 {y2:.1}\" stroke=\"#{}\" stroke-width=\"{:.1}\" fill=\"none\"/>",
            random.unit() * 80.0,
            random.unit() * 80.0,
            shade(&mut random),
            1.0 + random.unit() * 1.5,
        ));
    }
    for _ in 0..40 {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"#{}\"/>",
            random.unit() * 240.0,
            random.unit() * 80.0,
            0.6 + random.unit() * 1.4,
            shade(&mut random),
        ));
    }
    for (index, letter) in letters.bytes().enumerate() {
        let x = 14.0 + index as f64 * 37.0 + random.unit() * 5.0;
        let y = 16.0 + random.unit() * 14.0;
        let angle = (random.unit() - 0.5) * 40.0;
        let scale = 5.5 + random.unit() * 1.5;
        let skew = (random.unit() - 0.5) * 20.0;
        let mut path = String::new();
        for stroke in strokes(letter) {
            for (n, (px, py)) in stroke.iter().enumerate() {
                // Each point wobbles a little.
                let (dx, dy) = ((random.unit() - 0.5) * 0.5, (random.unit() - 0.5) * 0.5);
                path.push_str(&format!(
                    "{}{:.2} {:.2} ",
                    if n == 0 { "M" } else { "L" },
                    px + dx,
                    py + dy
                ));
            }
        }
        svg.push_str(&format!(
            "<path transform=\"translate({x:.1} {y:.1}) rotate({angle:.1} 12 18) skewX({skew:.1}) scale({scale:.2})\" \
             d=\"{}\" stroke=\"#{}\" stroke-width=\"{:.2}\" stroke-linecap=\"round\" stroke-linejoin=\"round\" fill=\"none\"/>",
            path.trim_end(),
            ["1f2a44", "3b1f44", "123d2a", "4a2511"][random.below(4) as usize],
            0.55 + random.unit() * 0.2,
        ));
    }
    // A line across the letters.
    svg.push_str(&format!(
        "<path d=\"M0 {:.1} Q120 {:.1} 240 {:.1}\" stroke=\"#555\" stroke-width=\"1.6\" fill=\"none\"/></svg>",
        25.0 + random.unit() * 30.0,
        random.unit() * 80.0,
        25.0 + random.unit() * 30.0,
    ));
    svg
}

fn shade(random: &mut Random) -> String {
    let v = 120 + random.below(100) as u8;
    format!("{v:02x}{v:02x}{:02x}", v.saturating_sub(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_should_follow_from_the_id_and_be_checked_loosely() {
        let key = key(b"secret");
        let id = new_id(&key, "run", "user", 1_000, 7);
        let letters = answer(&key, &id);
        assert_eq!(letters.len(), LENGTH);
        assert!(letters.bytes().all(|b| LETTERS.contains(&b)));
        assert!(matches(&key, &id, &letters.to_lowercase()));
        assert!(matches(&key, &id, &format!(" {} ", letters)));
        assert!(!matches(&key, &id, "AAAAAA"));
        assert_ne!(
            answer(&key, &id),
            answer(&key, &new_id(&key, "run", "user", 1_000, 8))
        );
    }

    #[test]
    fn an_id_should_hold_only_for_its_run_fan_and_time() {
        let key = key(b"secret");
        let id = new_id(&key, "run", "user", 1_000, 7);
        assert!(check_id(&key, &id, "run", "user", 2_000));
        assert!(!check_id(&key, &id, "run", "other", 2_000));
        assert!(!check_id(&key, &id, "other", "user", 2_000));
        assert!(!check_id(&key, &id, "run", "user", 1_000 + VALID_MS + 1));
        assert!(!check_id(
            &super::key(b"another"),
            &id,
            "run",
            "user",
            2_000
        ));
        let forged = id.replace(".1000.", ".2000.");
        assert!(!check_id(&key, &forged, "run", "user", 2_500));
    }

    #[test]
    fn the_picture_should_draw_the_letters_as_strokes_not_text() {
        let key = key(b"secret");
        let id = new_id(&key, "run", "user", 1_000, 7);
        let svg = image(&key, &id);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<text"));
        assert!(!svg.contains(&answer(&key, &id)));
        assert_eq!(svg, image(&key, &id), "the same id, the same picture");
        for &letter in LETTERS {
            assert!(!strokes(letter).is_empty(), "{}", letter as char);
        }
    }
}
