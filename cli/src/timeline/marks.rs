//! `--mark TIME=LABEL`: moments the caller knows and the controller does not (when a fault was
//! injected, when a deploy went out), and the time syntax shared with `--from`/`--to`.

use super::clock::{clock_tenths, instant};

/// A caller's mark: unix seconds (fractions kept) and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub time: f64,
    pub label: String,
}

/// `TIME=LABEL`, as clap's value parser of `--mark`.
pub fn parse_mark(text: &str) -> Result<Mark, String> {
    let Some((time, label)) = text.split_once('=') else {
        return Err(format!(
            "{text:?} is not TIME=LABEL (e.g. 1795628876.3=\"v3 starts failing\")"
        ));
    };
    // Quotes that reached us literally (a script passing `T="label"` without a shell) are not
    // part of the label.
    let label = label.trim();
    let label = label
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(label)
        .trim();
    if label.is_empty() {
        return Err(format!("{text:?} has no label after '='"));
    }
    Ok(Mark {
        time: instant(time.trim())?,
        label: label.to_string(),
    })
}

/// The summary's lines for the marks, in time order; a mark outside the drawn range says so.
pub fn summary_lines(marks: &[Mark], from: u64, to: u64) -> String {
    let mut sorted: Vec<&Mark> = marks.iter().collect();
    sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
    let mut out = String::new();
    for m in sorted {
        let outside = if m.time < from as f64 || m.time > to as f64 {
            " (outside the drawn range)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  mark {}  {}{outside}\n",
            clock_tenths(m.time),
            m.label
        ));
    }
    out
}

/// The earliest mark: the rollback's delay is counted from it.
pub fn first(marks: &[Mark]) -> Option<&Mark> {
    marks.iter().min_by(|a, b| a.time.total_cmp(&b.time))
}

#[cfg(test)]
mod tests {
    use super::{parse_mark, summary_lines, Mark};

    #[test]
    fn a_mark_takes_unix_seconds_with_a_fraction_or_rfc_3339_and_keeps_its_label() {
        assert_eq!(
            parse_mark("1795628876.3=v3 starts failing"),
            Ok(Mark {
                time: 1_795_628_876.3,
                label: "v3 starts failing".into()
            })
        );
        let rfc = parse_mark("2025-11-24T16:00:00.5Z=deploy").unwrap();
        assert_eq!(rfc.time, 1_764_000_000.5);
        assert_eq!(
            parse_mark("1795628876.3=\"v3 starts failing\"")
                .unwrap()
                .label,
            "v3 starts failing"
        );
        assert!(parse_mark("1795628876").is_err(), "no label");
        assert!(parse_mark("1795628876=").is_err(), "empty label");
        assert!(parse_mark("yesterday=x").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn marks_are_listed_in_time_order_with_tenths_of_a_second() {
        let marks = [
            Mark {
                time: 1_764_000_150.0,
                label: "late".into(),
            },
            Mark {
                time: 1_764_000_135.3,
                label: "v3 starts failing".into(),
            },
        ];
        let text = summary_lines(&marks, 1_764_000_000, 1_764_000_140);
        assert_eq!(
            text,
            "  mark 16:02:15.3  v3 starts failing\n  mark 16:02:30  late (outside the drawn range)\n"
        );
    }
}
