//! Just enough reading of a Dockerfile and a compose file for the static checks in main.rs.

/// A Dockerfile's instructions per stage: (keyword, arguments), continuation lines joined.
pub fn stages(dockerfile: &str) -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let joined = std::mem::take(&mut current);
        let (keyword, args) = joined.split_once(' ').unwrap_or((&joined, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("an instruction before FROM")
            .push((
                keyword,
                args.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
    }
    stages
}

pub fn args_of<'a>(stage: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// A compose service's block: its lines up to the next service (two-space keys under `services:`).
pub fn service<'a>(compose: &'a str, name: &str) -> &'a str {
    let header = format!("\n  {name}:\n");
    let start = compose
        .find(&header)
        .unwrap_or_else(|| panic!("no service {name}"))
        + 1;
    let rest = &compose[start + header.len() - 1..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let line = &rest[i..];
            let indent = line.len() - line.trim_start_matches(' ').len();
            indent < 4 && !line.trim().is_empty() && !line.trim_start().starts_with('#')
        })
        .unwrap_or(rest.len());
    &compose[start..start + header.len() - 1 + end]
}

/// The `command:` of a service, as one line.
pub fn command_of(block: &str) -> &str {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: "))
        .unwrap_or_else(|| panic!("no one-line command in:\n{block}"))
}

/// `major.minor` as numbers: "1.95" or "1.95-bookworm" or "1.89".
pub fn version(text: &str) -> (u32, u32) {
    let mut parts = text.split(['.', '-']);
    let major = parts.next().unwrap().parse().unwrap();
    let minor = parts.next().unwrap().parse().unwrap();
    (major, minor)
}
