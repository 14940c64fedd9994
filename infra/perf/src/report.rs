//! Turning measurements into the tables of docs/PERFORMANCE.md.
//!
//! Each instrument owns one section of that file, between `<!-- perf:NAME -->` and
//! `<!-- /perf:NAME -->`; rerunning an instrument replaces its section and leaves the rest (the
//! prose, the capacity model, the other instruments' figures) alone.

use crate::meter::Tally;
use std::collections::BTreeMap;
use std::path::Path;

/// Replaces (or appends) the section `name` of the markdown file at `path`.
pub fn write_section(path: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, replace_section(&text, name, body))
}

fn replace_section(text: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- perf:{name} -->");
    let close = format!("<!-- /perf:{name} -->");
    let section = format!("{open}\n{}\n{close}", body.trim_end());
    match (text.find(&open), text.find(&close)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{section}{}", &text[..start], &text[end + close.len()..])
        }
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    }
}

/// A one-line description of where and when a figure was measured.
pub fn provenance() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0);
    format!(
        "Measured {} on {} cores, {memory_gib:.0} GiB ({}).",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        cores,
        std::env::consts::ARCH,
    )
}

/// `sorted` must be sorted; `p` in 0..=1. Nearest-rank percentile.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    percentile(values, 0.5)
}

/// A key's shape: the key with its ids replaced, so `USER#0199...` and `USER#0198...` are one
/// row (`USER#{id}`), and its shard or block numbers too (`HOLDS#{n}`); other short segments
/// are kept.
pub fn entity(key: &str) -> String {
    let (index, key) = match key.split_once(':') {
        Some((index, key)) => (format!("{index}:"), key),
        None => (String::new(), key),
    };
    let segments: Vec<&str> = key
        .split('#')
        .enumerate()
        .map(|(i, segment)| {
            if i > 0 && !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{n}"
            } else if i == 0 || segment.len() <= 4 {
                segment
            } else {
                "{id}"
            }
        })
        .collect();
    format!("{index}{}", segments.join("#"))
}

/// The partition-heat tables: the hottest keys by write and read capacity units, the same by
/// key shape, and the SQS message groups, each with its share of the total.
pub fn heat(tally: &Tally, top: usize) -> String {
    let mut out = String::new();
    let total_writes: u64 = tally.writes.values().sum();
    let total_reads: u64 = tally.reads.values().sum();
    let total_wcu: f64 = tally.write_units.values().sum();
    let total_rcu: f64 = tally.read_units.values().sum();
    let total_sends: u64 = tally.groups.values().sum();
    out.push_str(&format!(
        "{total_writes} item writes ({total_wcu:.0} write units) over {} partition keys, \
         {total_reads} item reads ({total_rcu:.0} read units) over {} keys, {total_sends} SQS \
         messages over {} message groups.\n\n",
        tally.writes.len(),
        tally.reads.len(),
        tally.groups.len()
    ));
    out.push_str(
        "| hottest partition keys by write units | write units | share | item writes | read units |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (key, units) in hottest(&tally.write_units, top) {
        out.push_str(&format!(
            "| `{}` | {units:.0} | {} | {} | {:.0} |\n",
            shorten(key),
            percent(units, total_wcu),
            tally.writes.get(key).copied().unwrap_or(0),
            tally.read_units.get(key).copied().unwrap_or(0.0),
        ));
    }
    out.push_str(
        "\n| hottest partition keys by read units | read units | share | item reads |\n\
         |---|---:|---:|---:|\n",
    );
    for (key, units) in hottest(&tally.read_units, top.min(5)) {
        out.push_str(&format!(
            "| `{}` | {units:.0} | {} | {} |\n",
            shorten(key),
            percent(units, total_rcu),
            tally.reads.get(key).copied().unwrap_or(0),
        ));
    }
    #[derive(Default)]
    struct Shape {
        writes: u64,
        wcu: f64,
        reads: u64,
        rcu: f64,
        keys: u64,
    }
    let mut shapes: BTreeMap<String, Shape> = BTreeMap::new();
    for (key, n) in &tally.writes {
        let shape = shapes.entry(entity(key)).or_default();
        shape.writes += n;
        shape.keys += 1;
    }
    for (key, n) in &tally.reads {
        shapes.entry(entity(key)).or_default().reads += n;
    }
    for (key, units) in &tally.write_units {
        shapes.entry(entity(key)).or_default().wcu += units;
    }
    for (key, units) in &tally.read_units {
        shapes.entry(entity(key)).or_default().rcu += units;
    }
    let mut rows: Vec<_> = shapes.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.wcu
            .total_cmp(&a.1.wcu)
            .then(b.1.rcu.total_cmp(&a.1.rcu))
    });
    out.push_str(
        "\n| key shape | keys written | item writes | write units | share | item reads | read units |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (shape, s) in rows {
        out.push_str(&format!(
            "| `{shape}` | {} | {} | {:.0} | {} | {} | {:.0} |\n",
            s.keys,
            s.writes,
            s.wcu,
            percent(s.wcu, total_wcu),
            s.reads,
            s.rcu
        ));
    }
    out.push_str("\n| SQS message group | messages sent | share |\n|---|---:|---:|\n");
    for (group, sends) in hottest(&tally.groups, top.min(5)) {
        out.push_str(&format!(
            "| `{}` | {sends} | {} |\n",
            shorten(group),
            share(sends, total_sends)
        ));
    }
    out
}

fn hottest<N: Copy + PartialOrd>(counts: &BTreeMap<String, N>, top: usize) -> Vec<(&String, N)> {
    let mut rows: Vec<_> = counts.iter().map(|(k, n)| (k, *n)).collect();
    rows.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(b.0))
    });
    rows.truncate(top);
    rows
}

/// How queue entry spread: the item writes of the entry-shard partitions (`QUEUE#{id}#{n}`:
/// the shard counters, and the progress items the admitter moves) and the entries of the SQS
/// message groups, each with the busiest one's share against the even share.
pub fn entry_spread(tally: &Tally) -> String {
    let shards: Vec<u64> = tally
        .writes
        .iter()
        .filter(|(key, _)| entity(key) == "QUEUE#{id}#{n}")
        .map(|(_, writes)| *writes)
        .collect();
    let groups: Vec<u64> = tally.groups.values().copied().collect();
    let spread = |counts: &[u64]| -> (u64, String, String) {
        let total: u64 = counts.iter().sum();
        let busiest = counts.iter().copied().max().unwrap_or(0);
        let even = if counts.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1}%", 100.0 / counts.len() as f64)
        };
        (total, share(busiest, total), even)
    };
    let (shard_writes, shard_busiest, shard_even) = spread(&shards);
    let (sends, group_busiest, group_even) = spread(&groups);
    format!(
        "\nQueue entry: {} entry-shard partitions (`QUEUE#{{id}}#{{n}}`) took {shard_writes} item \
         writes, the busiest {shard_busiest} of them (an even spread is {shard_even}); {} \
         message groups carried {sends} entries, the busiest {group_busiest} (even: \
         {group_even}).\n",
        shards.len(),
        groups.len(),
    )
}

/// The hottest partition key by write units, with its share of all write units and of all item
/// writes.
pub fn hottest_write_share(tally: &Tally) -> Option<(String, f64, f64)> {
    let total_units: f64 = tally.write_units.values().sum();
    let total_writes: u64 = tally.writes.values().sum();
    let (key, units) = hottest(&tally.write_units, 1).into_iter().next()?;
    let writes = tally.writes.get(key).copied().unwrap_or(0);
    Some((
        key.clone(),
        units / total_units.max(f64::MIN_POSITIVE),
        writes as f64 / total_writes.max(1) as f64,
    ))
}

fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "–".to_owned();
    }
    format!("{:.1}%", 100.0 * part / whole)
}

pub fn share(part: u64, whole: u64) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

/// Long ids abbreviated so a table stays readable: `QUEUE#…89abcdef`. The tail is kept because
/// UUID v7 ids made close in time share their head.
pub fn shorten(key: &str) -> String {
    key.split('#')
        .map(|segment| {
            if segment.len() > 12 && segment.is_char_boundary(segment.len() - 8) {
                format!("…{}", &segment[segment.len() - 8..])
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("#")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_section_exists_should_replace_only_it() {
        let text = "# Perf\n\nintro\n\n<!-- perf:a -->\nold\n<!-- /perf:a -->\n\nafter\n";
        let new = replace_section(text, "a", "new\n");
        assert_eq!(
            new,
            "# Perf\n\nintro\n\n<!-- perf:a -->\nnew\n<!-- /perf:a -->\n\nafter\n"
        );
    }

    #[test]
    fn when_section_missing_should_append_it() {
        let new = replace_section("# Perf\n", "b", "body");
        assert_eq!(new, "# Perf\n\n<!-- perf:b -->\nbody\n<!-- /perf:b -->\n");
    }

    #[test]
    fn when_key_has_ids_should_group_by_shape() {
        assert_eq!(
            entity("QUEUE#0199f3c2-aaaa-7bbb-8ccc-0123456789ab"),
            "QUEUE#{id}"
        );
        assert_eq!(entity("gsi1:HOLDS#2"), "gsi1:HOLDS#{n}");
        assert_eq!(
            entity("SCHEDULE#0199f3c2-aaaa-7bbb-8ccc-0123456789ab#1"),
            "SCHEDULE#{id}#{n}"
        );
        assert_eq!(
            entity(
                "QTOKEN#0199f3c2-aaaa-7bbb-8ccc-0123456789ab#0199f3c2-aaaa-7bbb-8ccc-0123456789ac"
            ),
            "QTOKEN#{id}#{id}"
        );
    }

    #[test]
    fn when_heat_should_name_the_hottest_key_and_its_share() {
        let mut tally = Tally::default();
        tally.writes.insert("QUEUE#c".into(), 1);
        tally.writes.insert("USER#a".into(), 3);
        // One big item write outweighs three small ones.
        tally.write_units.insert("QUEUE#c".into(), 6.0);
        tally.write_units.insert("USER#a".into(), 2.0);
        let (key, unit_share, write_share) = hottest_write_share(&tally).unwrap();
        assert_eq!(key, "QUEUE#c");
        assert!((unit_share - 0.75).abs() < 1e-9);
        assert!((write_share - 0.25).abs() < 1e-9);
        assert!(heat(&tally, 5).contains("| `QUEUE#c` | 6 | 75.0% | 1 | 0 |"));
    }

    #[test]
    fn when_percentile_should_use_nearest_rank() {
        let values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&values, 0.5), 6);
        assert_eq!(percentile(&values, 1.0), 10);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
