//! Aligned columns, as `kubectl get` prints them.

/// The rows (the first is the header) in columns three blanks apart, each line after `indent`. The last
/// column (a message) is not padded: no trailing blanks.
pub fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .map(|row| row.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c + 1 == count {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths.get(c).copied().unwrap_or(0))
                }
            })
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}
